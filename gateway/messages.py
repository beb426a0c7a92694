"""The gateway's own API error messages in Chinese (diandian_common.i18n): the proxy's, the
request guard's, the key store's, the rate limiter's and the event report's. (The pages'
texts are Flask-Babel's, in translations/.)"""
from diandian_common.i18n import Catalogue

MESSAGES = Catalogue({
    # app.py, proxy.py, openapi.py
    "no API at {path}": "{path} 没有 API",
    "the {service} service did not answer in time": "{service} 服务未能及时响应",
    "the {service} service is unavailable: no report": "{service} 服务不可用：无法生成报告",
    "the {service} service is unavailable": "{service} 服务不可用",
    "no service's API description is available": "没有任何服务的 API 描述可用",
    # limits.py
    "too many requests; retry after the number of seconds in Retry-After":
        "请求过于频繁；请在 Retry-After 给出的秒数之后重试",
    # keys.py
    "the API key is not valid (unknown or revoked)": "此 API 密钥无效（未知或已吊销）",
    "the gateway's key store is unavailable": "网关的密钥存储不可用",
    # security.py and routes.path_problem
    "the Host header is not a valid host name": "Host 请求头不是有效的主机名",
    "this gateway does not serve the host named in the request": "本网关不服务请求中指定的主机",
    "the forwarded path prefix is not a plain path": "转发的路径前缀不是普通路径",
    "the URL is longer than {max_bytes} bytes": "URL 长度超过 {max_bytes} 字节",
    "the request's header fields are larger than {max_bytes} bytes in all":
        "请求头字段总长度超过 {max_bytes} 字节",
    "the path must not contain control characters": "路径不能包含控制字符",
    "the path must not contain backslashes": "路径不能包含反斜杠",
    "the path must not contain empty segments ('//')": "路径不能包含空段（'//'）",
    "the path must not contain '.' or '..' segments": "路径不能包含 '.' 或 '..' 段",
    "the path must not be percent-encoded twice": "路径不能经过两次百分号编码",
    "the path must not contain an encoded '?' or '#'": "路径不能包含编码后的 '?' 或 '#'",
    "the path must not contain '#'": "路径不能包含 '#'",
    "the path has a '%' that starts no percent-encoding": "路径中的 '%' 不是有效的百分号编码",
    "the path must not percent-encode '.', '/', '\\', '?', '#', '%' or control characters":
        "路径不能对 '.'、'/'、'\\'、'?'、'#'、'%' 或控制字符进行百分号编码",
    # share_card.py
    "{what} is unavailable; try again shortly": "{what}暂时不可用，请稍后重试",
    "the {service} service": "{service} 服务",
    "no certificate has this id": "没有证书使用此 ID",
    "this certificate has been revoked and is not shared": "此证书已被吊销，不再分享",
    "the share card is read only: GET or HEAD": "分享卡片只读：仅支持 GET 或 HEAD",
    # event_report.py
    "the scene has more than {max_orders} orders: too many for one report":
        "该场景的订单超过 {max_orders} 笔：一份报告容纳不下",
    "scene {slug} not found": "未找到场景 {slug}",
    "one of {choices}": "必须是以下之一：{choices}",
    "the event report is {media_types}; Accept allows neither":
        "活动报告的格式为 {media_types}；Accept 请求头两者都不接受",
})
