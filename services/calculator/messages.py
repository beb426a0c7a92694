"""The calculator's own error messages in Chinese (diandian_common.i18n): English templates
as they are raised here, with their parameters named."""
from diandian_common.i18n import Catalogue

MESSAGES = Catalogue({
    # service.py, organiser.py, api.py
    "scene {slug} not found": "未找到场景 {slug}",
    "estimate {estimate_id} not found": "未找到估算 {estimate_id}",
    "factor set {version} not found": "未找到排放因子集 {version}",
    "must not be before starts_on": "不能早于 starts_on",
    "the slug {slug} is already used by another scene": "标识 {slug} 已被另一个场景使用",
    "already taken": "已被占用",
    "unknown scene {slug}": "未知场景 {slug}",
    # api.py, service.py: a guest's own estimates (/api/v1/my-estimates)
    "your estimates need the guest's participant cookie (through the gateway)":
        "查看你的估算需要访客的参与者 Cookie（经由网关）",
    "not one of your estimates: {estimate_id}": "不是你的估算：{estimate_id}",
    # schemas.py: estimates
    "unknown IATA airport code {code}": "未知的 IATA 机场代码 {code}",
    "not an ISO 3166-1 alpha-2 country code: {code}": "不是 ISO 3166-1 两字母国家代码：{code}",
    "not an ISO 3166-2:CN province code (like CN-SC): {code}":
        "不是 ISO 3166-2:CN 省级行政区代码（例如 CN-SC）：{code}",
    "lowercase letters, digits and single hyphens only": "只能使用小写字母、数字和单个连字符",
    "not a field of {type} activities": "不是 {type} 类活动的字段",
    "give party_size or passengers, not both": "party_size 和 passengers 只能填写一个",
    "give either from/to or distance_km, not both": "from/to 与 distance_km 只能填写一种",
    "must differ from the departure airport": "必须与出发机场不同",
    "at most {count} activities": "最多 {count} 项活动",
    "only life estimates take a period": "只有生活估算（life）才能填写 period",
    # schemas.py: airport search
    "type part of an airport's code, city or name": "请输入机场代码、城市或机场名称的一部分",
    "must not contain control characters": "不能包含控制字符",
    # organiser_schemas.py
    "required with waste_kg": "填写 waste_kg 时必填",
    "only with waste_kg": "仅在填写 waste_kg 时可填",
})
