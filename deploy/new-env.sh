#!/bin/sh
# Writes the secrets of one Diandian deployment to an env file: deploy/.env by default, which
# `docker compose -f deploy/docker-compose.yml` reads (it lives next to the compose file), or
# the file named. Every secret the stack requires, fresh and random: 64 URL-safe characters
# (python3 -c "import secrets; print(secrets.token_urlsafe(48))"), so each also fits in a URL.
# The file is readable by its owner only. It never overwrites one: changed secrets lock a
# running stack out of its own PostgreSQL (whose password is set when its volume is first
# created) and void every signed cookie and certificate code.
#
#   deploy/new-env.sh [FILE]
set -eu
target=${1:-$(dirname "$0")/.env}
if [ -e "$target" ]; then
    echo "new-env: $target exists; it is left as it is (remove it first to start over)" >&2
    exit 1
fi

random_token() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import secrets; print(secrets.token_urlsafe(48))'
    else
        openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n'
        echo
    fi
}

# Never one that starts with "-": redis-server would take "--requirepass --x…" for an option.
secret() {
    while :; do
        value=$(random_token)
        case $value in
            -*) ;;
            *) echo "$value"; return ;;
        esac
    done
}

umask 077
cat >"$target" <<ENV
# The secrets of one Diandian deployment (deploy/new-env.sh, $(date -u +%Y-%m-%d)). Keep this
# file out of version control and readable by its owner only. deploy/README.md says what
# each one protects; every process refuses to start with DIANDIAN_ENV=production when one is
# missing, a public development value or shorter than 32 characters.
GATEWAY_SECRET_KEY=$(secret)
INTERNAL_API_SECRET=$(secret)
METRICS_TOKEN=$(secret)
CERTIFICATE_SIGNING_KEYS=$(secret)
REDIS_PASSWORD=$(secret)
POSTGRES_PASSWORD=$(secret)
OPERATOR_API_KEY=$(secret)
# New orders are paid through testpay, the generic signed-webhook provider
# (services/orders/README.md): whoever holds its secret confirms payments. The sandbox is
# refused in production.
PAYMENT_PROVIDERS=testpay
PAYMENT_WEBHOOK_SECRET_TESTPAY=$(secret)
# Going live with WeChat Pay and Alipay (deploy/README.md): this script cannot invent a
# merchant. From the merchant's WeChat Pay and Alipay accounts, set PAYMENT_PROVIDERS (e.g.
# wechatpay,alipay) and fill in the lines below; put the key files in PAYMENT_KEYS_DIR
# (mounted read-only at /run/secrets/payment). Every orders process refuses to start while
# an enabled provider lacks one, or names a key file that is not there.
# PAYMENT_KEYS_DIR=/etc/diandian/payment-keys
# WECHATPAY_MCHID=
# WECHATPAY_APPID=
# WECHATPAY_CERT_SERIAL_NO=
# WECHATPAY_PRIVATE_KEY_FILE=/run/secrets/payment/apiclient_key.pem
# WECHATPAY_APIV3_KEY=
# WECHATPAY_PUBLIC_KEY_FILE=/run/secrets/payment/pub_key.pem
# WECHATPAY_PUBLIC_KEY_ID=
# WECHAT_APP_SECRET=
# ALIPAY_APP_ID=
# ALIPAY_APP_PRIVATE_KEY_FILE=/run/secrets/payment/alipay_app_private_key.pem
# ALIPAY_PUBLIC_KEY_FILE=/run/secrets/payment/alipay_public_key.pem
# PAYMENT_FEE_BPS_WECHATPAY=60
# PAYMENT_FEE_BPS_ALIPAY=60
ENV
echo "new-env: wrote $target"
