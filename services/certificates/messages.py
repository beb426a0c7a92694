"""The certificates service's own error messages in Chinese (diandian_common.i18n)."""
from diandian_common.i18n import Catalogue

MESSAGES = Catalogue({
    "certificate {certificate_id} not found": "未找到证书 {certificate_id}",
    "certificate storage is unavailable; try again": "证书存储暂时不可用，请重试",
    "no certificate has this verification code": "没有证书使用此验证码",
})
