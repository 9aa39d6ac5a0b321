"""QR images rendered from the URL a code opens: PNG (pure-Python pypng) and SVG."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.pure
import qrcode.image.svg


def _code(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(url)
    code.make(fit=True)
    return code


def png(url: str) -> bytes:
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=qrcode.image.pure.PyPNGImage).save(buffer)
    return buffer.getvalue()


def svg(url: str) -> str:
    buffer = io.BytesIO()
    _code(url).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue().decode()
