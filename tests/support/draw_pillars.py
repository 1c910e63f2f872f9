#!/usr/bin/env python3
"""Draws the example edition's diagram, editions/glo-act-special-edition/images/six-pillars.png:
one roof (the project) resting on six coloured pillars (its six areas of work) on a shared
base. Plain shapes, no text (the alt text and the article say what it shows), no library:
the PNG is written with zlib alone, so anyone can redraw it with `python3 draw_pillars.py OUT`.
"""
import struct
import sys
import zlib

W, H = 1200, 640
BACKGROUND = (238, 244, 251)
ROOF = (11, 79, 138)
BASE = (62, 76, 89)
PILLARS = [(0, 121, 191), (0, 150, 136), (104, 159, 56), (245, 166, 35), (230, 81, 0), (142, 68, 173)]

pixels = [bytearray(BACKGROUND * W) for _ in range(H)]


def put(x, y, colour):
    if 0 <= x < W and 0 <= y < H:
        pixels[y][3 * x:3 * x + 3] = bytes(colour)


def rect(x0, y0, x1, y1, colour):
    for y in range(max(0, y0), min(H, y1)):
        pixels[y][3 * max(0, x0):3 * min(W, x1)] = bytes(colour) * (min(W, x1) - max(0, x0))


def disc(cx, cy, r, colour):
    for y in range(cy - r, cy + r + 1):
        for x in range(cx - r, cx + r + 1):
            if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                put(x, y, colour)


# The roof: a flat triangle over the whole width, then its beam.
apex, eaves = 60, 190
for y in range(apex, eaves):
    half = (y - apex) * (W // 2 - 70) // (eaves - apex)
    rect(W // 2 - half, y, W // 2 + half, y + 1, ROOF)
rect(70, eaves, W - 70, eaves + 28, ROOF)
disc(W // 2, 140, 26, BACKGROUND)
# Six pillars, each with a capital, a shaft and a round emblem.
left, right, top, bottom = 130, W - 130, eaves + 44, 520
step = (right - left) // 6
for i, colour in enumerate(PILLARS):
    x = left + i * step + step // 2
    rect(x - 52, top, x + 52, top + 18, colour)
    rect(x - 36, top + 18, x + 36, bottom, colour)
    for k in range(3):
        rect(x - 24 + k * 20, top + 40, x - 20 + k * 20, bottom - 20, tuple(min(255, c + 40) for c in colour))
    disc(x, top + 120, 22, BACKGROUND)
    disc(x, top + 120, 12, colour)
# The base everything stands on: the partner countries.
rect(90, bottom, W - 90, bottom + 22, BASE)
rect(60, bottom + 22, W - 60, bottom + 44, BASE)

raw = b"".join(b"\0" + bytes(row) for row in pixels)


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
with open(sys.argv[1], "wb") as f:
    f.write(png)
