"""Money as the providers count it: integer fen, fees rounded half up per transaction."""
from __future__ import annotations

FEE_BPS = 60  # both providers' standard rate, 0.6 %


def fee_fen(amount_fen: int) -> int:
    """The provider's fee on ``amount_fen``, half up to the fen (integers: no float rounding
    to even, which would put 4 where the provider's bill says 5 on 750 fen)."""
    sign = -1 if amount_fen < 0 else 1
    return sign * ((abs(amount_fen) * FEE_BPS + 5_000) // 10_000)
