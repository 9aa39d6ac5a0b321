"""QR images rendered from the URL a code opens: PNG (pure-Python pypng) and SVG.

qrcode is imported on first use: most requests render no image, and cold start pays for
every module imported at the top.
"""
from __future__ import annotations

import io


def _code(url: str):
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(url)
    code.make(fit=True)
    return code


def png(url: str) -> bytes:
    import qrcode.image.pure

    buffer = io.BytesIO()
    _code(url).make_image(image_factory=qrcode.image.pure.PyPNGImage).save(buffer)
    return buffer.getvalue()


def svg(url: str) -> str:
    import qrcode.image.svg

    buffer = io.BytesIO()
    _code(url).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue().decode()
