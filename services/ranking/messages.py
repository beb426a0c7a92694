"""The ranking service's own error messages in Chinese (diandian_common.i18n)."""
from diandian_common.i18n import Catalogue

MESSAGES = Catalogue({
    "rankings are temporarily unavailable; try again shortly": "排行榜暂时不可用，请稍后重试",
    "your ranks need the guest's participant cookie (through the gateway)":
        "查看你的排名需要访客的参与者 Cookie（经由网关）",
    "participant {participant_id} is not on this board": "参与者 {participant_id} 不在此排行榜上",
    "order {order_id} has no contribution on the boards": "订单 {order_id} 不在排行榜上",
    "needs scene: the name must be the name of the board's scene":
        "需要同时填写 scene：名称必须是该排行榜场景的名称",
    "must be a scene slug (lower-case letters, digits, '-' and '_')":
        "必须是场景标识（小写字母、数字、“-”和“_”）",
})
