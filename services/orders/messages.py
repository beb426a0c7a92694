"""The orders service's own error messages in Chinese (diandian_common.i18n): English
templates as they are raised in its packages, with their parameters named."""
from diandian_common.i18n import Catalogue

MESSAGES = Catalogue({
    # values named inside sentences: an order's status
    "pending_payment": "待支付",
    "paid": "已支付",
    "retired": "已注销",
    "completed": "已完成",
    "cancelled": "已取消",
    "failed": "失败",
    # NotFound(what, id)
    "order {order_id} not found": "未找到订单 {order_id}",
    "project {project} not found": "未找到项目 {project}",
    "owner {owner_id} not found": "未找到所有者 {owner_id}",
    "payment provider {provider} not found": "未找到支付渠道 {provider}",
    "webhook endpoint {endpoint_id} not found": "未找到 Webhook 端点 {endpoint_id}",
    "delivery {delivery_id} not found": "未找到投递记录 {delivery_id}",
    # ordering: placement, identity, idempotency
    "unknown project {project_id}": "未知项目 {project_id}",
    "unknown scene {slug}": "未知场景 {slug}",
    "unknown estimate {estimate_id}": "未知估算 {estimate_id}",
    "unknown order {order_id}": "未知订单 {order_id}",
    "must be greater than 0": "必须大于 0",
    "must be greater than 0 and at most {max_kg}": "必须大于 0 且不超过 {max_kg}",
    "give exactly one of quantity_kg and estimate_id": "quantity_kg 和 estimate_id 必须且只能填写一个",
    "{project_code} has {available_kg} kg available, {quantity_kg} kg requested":
        "{project_code} 可用 {available_kg} kg，请求 {quantity_kg} kg",
    "a guest's order is at most {max_kg} kg; larger orders are placed through an operator key":
        "访客单笔订单最多 {max_kg} kg；更大的订单需通过运营方密钥下单",
    "this participant already holds {unpaid_kg} kg unpaid; at most {max_kg} kg may wait for payment at "
    "a time: pay or let earlier orders expire":
        "该参与者已有 {unpaid_kg} kg 未支付；同一时间最多"
        " {max_kg} kg 可等待支付：请先支付或等待之前的订单过期",
    "orders from this address already hold {unpaid_kg} kg unpaid; at most {max_kg} kg may wait for "
    "payment at a time": "来自此地址的订单已有 {unpaid_kg} kg 未支付；同一时间最多 {max_kg} kg 可等待支付",
    "required header, 1 to {max_length} characters": "必填请求头，长度为 1 到 {max_length} 个字符",
    "{header} {key} was used for a different request": "{header} {key} 已用于另一个不同的请求",
    "the request raced another with the same key": "该请求与使用同一密钥的另一请求同时到达",
    "an operator placing an order for a guest names them in participant.id":
        "运营方为访客下单时，须在 participant.id 中指明访客",
    "your orders need the guest's participant cookie (through the gateway)":
        "查看你的订单需要访客的参与者 Cookie（经由网关）",
    "not one of your orders: {order_id}": "不是你的订单：{order_id}",
    "placing an order needs the guest's participant cookie (through the gateway) or an operator key":
        "下单需要访客的参与者 Cookie（经由网关）或运营方密钥",
    "order {order_id} belongs to another participant": "订单 {order_id} 属于另一位参与者",
    "the calculator service is not answering": "计算服务没有响应",
    "the calculator answered {status}": "计算服务返回了 {status}",
    "an order that is {status} cannot {move}": "状态为{status}的订单不能执行 {move}",
    # payments
    "order {order_id} is paid through {provider}": "订单 {order_id} 通过 {provider} 支付",
    "order {order_id} is {status}": "订单 {order_id} {status}",
    "the sandbox provider confirms no payment in production": "沙盒支付渠道在生产环境中不确认任何支付",
    "{provider} event {event_id} arrived with another body": "{provider} 事件 {event_id} 收到了不同的内容",
    "{provider} reports {amount_fen} {currency}; order {order_id} is {order_amount_fen} {order_currency}":
        "{provider} 报告金额为 {amount_fen} {currency}；订单 {o"
        "rder_id} 为 {order_amount_fen} {order_currency}",
    "no enabled payment provider pays by {method} here; possible: {offered}":
        "此处没有已启用的支付渠道支持 {method}；可选：{offered}",
    "no enabled payment provider pays by {method}": "没有已启用的支付渠道支持 {method}",
    "the sandbox provider confirms payments that never happened; it is refused in production "
    "(DIANDIAN_ENV=production): set PAYMENT_PROVIDER to a real provider":
        "沙盒支付渠道会确认并未发生的支付，生产环境（DIANDIAN_ENV=pro"
        "duction）拒绝使用：请将 PAYMENT_PROVIDER 设为真实渠道",
    "{provider} takes no payments: it is not configured to verify its notifications "
    "(services/orders/README.md, Payments)":
        "{provider} 暂不收款：尚未配置验证其通知（见 services/orders/README.md 的 Payments 一节）",
    "an ISO 4217 code": "ISO 4217 货币代码",
    # catalogue
    "a project with code {code} exists": "代码为 {code} 的项目已存在",
    "must be ≥ first, and first ≥ 1": "必须 ≥ first，且 first ≥ 1",
    "must be ≥ first": "必须 ≥ first",
    "serials {first}-{last} overlap an issued block": "序列号 {first}-{last} 与已签发的区段重叠",
    "give at least one field to change": "请至少填写一个要修改的字段",
    "2 to 64 characters: capital letters, digits and -": "2 到 64 个字符：大写字母、数字和 -",
    "a lower-case identifier such as forestry_carbon_sink": "小写标识符，例如 forestry_carbon_sink",
    "1 to 40 letters, digits, . _ -": "1 到 40 个字母、数字、. _ -",
    "must be a scene slug (a-z, 0-9, -)": "必须是场景标识（a-z、0-9、-）",
    # ledger
    "must not be in the future": "不能晚于今天",
    "cancellation {cancellation_id} is already recorded for this project":
        "注销编号 {cancellation_id} 已为此项目登记",
    "{requested_kg} kg to anchor, but only {unanchored_kg} kg of this project's retired serials are "
    "not anchored yet": "需锚定 {requested_kg} kg，但此项目已注销的序列号中只有 {unanchored_kg} kg 尚未锚定",
    # settlement
    "an owner named {name} exists": "名为 {name} 的所有者已存在",
    "unknown owner {owner_id}": "未知所有者 {owner_id}",
    "payout reference {reference} was recorded for another payout": "付款参考号 {reference} 已用于另一笔付款",
    "no statement for this owner, project and period": "此所有者、项目和期间没有对账单",
    "the project had no owner when these payments were captured": "收款时该项目没有所有者",
    "nothing is due on {period}: net {net_fen}, paid {paid_fen}":
        "{period} 没有应付金额：净额 {net_fen}，已付 {paid_fen}",
    "{amount_fen} fen is more than the {due_fen} fen still due (net {net_fen}, paid {paid_fen})":
        "{amount_fen} 分超过了仍应付的 {due_fen} 分（净额 {net_fen}，已付 {paid_fen}）",
    "{period} is not over yet; its statement may still change": "{period} 尚未结束，其对账单仍可能变化",
    "a month, YYYY-MM": "月份，格式为 YYYY-MM",
    # webhooks
    "webhook endpoint {endpoint_id} is disabled; enable it first":
        "Webhook 端点 {endpoint_id} 已停用，请先启用",
    "delivery {delivery_id} is being sent right now": "投递 {delivery_id} 正在发送中",
    "a URL of 1 to {max_length} characters": "长度为 1 到 {max_length} 个字符的 URL",
    "a URL cannot contain white space or control characters": "URL 不能包含空白或控制字符",
    "not a valid URL: {reason}": "不是有效的 URL：{reason}",
    "Invalid IPv6 URL": "无效的 IPv6 URL",
    "the URL must be https://…": "URL 必须以 https:// 开头",
    "only https:// endpoints are allowed (WEBHOOK_ALLOW_HTTP is off)":
        "只允许 https:// 端点（WEBHOOK_ALLOW_HTTP 未开启）",
    "credentials in the URL are not allowed; authenticate by the signature":
        "URL 中不允许包含凭据；请通过签名认证",
    "a URL fragment is never sent; remove it": "URL 片段（#…）不会被发送，请删除",
    "the URL has no host": "URL 没有主机名",
    "{address} is {reason}; such addresses are refused unless inside WEBHOOK_ALLOWED_NETWORKS":
        "{address} 是{reason}；除非位于 WEBHOOK_ALLOWED_NETWORKS 内，否则拒绝此类地址",
    "loopback": "环回地址",
    "link-local": "链路本地地址",
    "multicast": "组播地址",
    "unspecified": "未指定地址",
    "private": "私有地址",
    "not a public address": "非公网地址",
})
