"""A local emulator of WeChat Pay (API v3) and Alipay (RSA2) for tests and demos: no money
moves and nothing leaves the machine. See payment_emulator/README.md."""
