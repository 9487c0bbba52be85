"""The pure parts of the platform limits, offline: address normalisation and classification (SSRF), the redactor's
8-character runs and ``bound``, media types by magic bytes, the platform keys and their defaults."""

from __future__ import annotations

import ipaddress
import time

import pytest

from agent.config import EasyAIPlatformConfig
from agent.platforms.errors import PermanentError
from agent.platforms.media import media_type_of, sniff
from agent.platforms.targets import TargetPolicy, embedded_ipv4, parse_ip, refusal
from agent.redact import MASK, Redactor, bound

KEY = "sk-live-9Qz4Tn7Wc2Lp8Rv5Xb3Md6Hk"

# --------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "host, normal",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),  # hex, short form
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),  # trailing dot
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_every_literal_spelling_is_parsed(host, normal):
    assert parse_ip(host) == ipaddress.ip_address(normal)


@pytest.mark.parametrize("host", ["example.com", "localhost", "1.2.3.4.nip.io", "0x", "08.0.0.1", "256.1.1.1.1", ""])
def test_names_and_garbage_are_not_literals(host):
    assert parse_ip(host) is None


@pytest.mark.parametrize(
    "v6, v4",
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("::ffff:0:a00:1", "10.0.0.1"),  # SIIT translated
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("2002:a9fe:a9fe:1::5", "169.254.169.254"),
        ("2606:4700::1111", None),
    ],
)
def test_embedded_ipv4_is_unwrapped(v6, v4):
    got = embedded_ipv4(ipaddress.IPv6Address(v6))
    assert got == (ipaddress.IPv4Address(v4) if v4 else None)


@pytest.mark.parametrize(
    "host, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.255.1.2", "loopback"),
        ("2130706433", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("0x7f.1", "loopback"),
        ("::1", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:7f00:1]", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("10.1.2.3", "private"),
        ("0x0a.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("2852039166", "cloud metadata"),  # 169.254.169.254 in decimal
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:a9fe:a9fe::1", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("fec0::1", "reserved"),
        ("64:ff9b:1::a00:1", "reserved"),
    ],
)
def test_addresses_a_booth_must_never_reach(host, reason):
    ip = parse_ip(host)
    assert ip is not None and refusal(ip) == reason


@pytest.mark.parametrize(
    "host", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822", "1.1.1.1"]
)
def test_public_addresses_pass(host):
    ip = parse_ip(host)
    assert ip is not None and refusal(ip) is None


def test_the_policy_lets_the_platform_itself_through_and_nothing_else_local():
    """Literal addresses only: nothing is resolved, nothing is connected to."""
    sim = TargetPolicy("127.0.0.1", 3001)
    assert sim.addresses("127.0.0.1", 3001) == ["127.0.0.1"]
    assert sim.addresses("::ffff:127.0.0.1", 3001) == ["::ffff:7f00:1"]  # itself, spelled another way
    assert sim.addresses("93.184.216.34", 443) == ["93.184.216.34"]
    for host, port in [("127.0.0.1", 8080), ("0x7f.1", 8080), ("::ffff:127.0.0.2", 3001), ("169.254.169.254", 80)]:
        with pytest.raises(PermanentError) as e:
            sim.addresses(host, port)
        assert e.value.kind == "output" and "refused" in str(e.value)


def test_allow_private_hosts_opens_the_lan_but_never_loopback_or_metadata():
    lan = TargetPolicy(
        "easyai.example", 443, allow_private_hosts=["10.0.0.5", "100.64.1.1", "127.0.0.1", "169.254.169.254"]
    )
    assert lan.addresses("10.0.0.5", 9000) == ["10.0.0.5"]
    assert lan.addresses("100.64.1.1", 9000) == ["100.64.1.1"]
    for host in ("10.0.0.6", "127.0.0.1", "169.254.169.254"):
        with pytest.raises(PermanentError):
            lan.addresses(host, 9000)


# --------------------------------------------------------------------------------------------- the redactor


def test_any_8_character_run_of_a_secret_is_masked():
    r = Redactor([KEY])
    for i in range(len(KEY) - 7):
        for n in (8, 9, 15, len(KEY) - i):
            part = KEY[i : i + n]
            if len(part) < 8:
                continue
            masked = r.mask(f"before {part} after")
            assert part not in masked and masked.startswith("before ") and masked.endswith(" after"), (part, masked)
    assert r.mask(f"a {KEY[:7]} b") == f"a {KEY[:7]} b"  # 7 characters are not a run
    assert r.mask(f"{KEY} and {KEY[:-1]}") == f"{MASK} and {MASK}"


def test_runs_in_json_and_url_encodings_are_masked_too():
    secret = 'pa"ss\\word/with spaces'
    r = Redactor([secret])
    assert "word/wit" not in r.mask('{"error": "pa\\"ss\\\\word/with spac"}')
    assert "with%20sp" not in r.mask("https://x/?k=pa%22ss%5Cword%2Fwith%20spaces")


def test_short_secrets_are_masked_only_whole():
    r = Redactor(["abc123"])
    assert r.mask("x abc123 y abc12") == f"x {MASK} y abc12"


def test_masking_a_6_mb_text_is_quick():
    r = Redactor([KEY, "another-secret-value-0123456789"])
    text = ("lorem ipsum " * 500_000) + KEY[3:20]
    t0 = time.monotonic()
    out = r.mask(text)
    took = time.monotonic() - t0
    print(f"FIGURE masking 6 MB with two secrets took {took:.2f} s")
    assert KEY[3:20] not in out and took < 2.0


def test_bound_cuts_long_texts_and_says_so():
    assert bound("short", 100) == "short"
    long = "a" * 6_000_000
    out = bound(long, 300)
    assert len(out) < 360 and out.startswith("a" * 300) and "5999700 more characters" in out


def test_bound_never_cuts_through_a_mask():
    text = "x" * 98 + MASK + "y" * 100
    out = bound(text, 99)
    assert out.startswith("x" * 98) and "*" not in out.split(" ")[0]


def test_redactor_bounded_masks_before_cutting():
    r = Redactor([KEY])
    text = "p" * 290 + KEY + "q" * 6_000_000
    out = r.bounded(text, 300)
    assert len(out) < 360
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in out


# --------------------------------------------------------------------------------------------- magic bytes


@pytest.mark.parametrize(
    "head, media_type",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"BM\x8a\x00\x00\x00\x00\x00\x00\x00\x8a\x00\x00\x00\x7c\x00\x00\x00", "image/bmp"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xf1\x50\x80\x00\x1f\xfc", "audio/aac"),
        (b"OggS\x00\x02\x00\x00\x00\x00", "audio/ogg"),
        (b"fLaC\x00\x00\x00\x22", "audio/flac"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"glTF\x02\x00\x00\x00", "model/gltf-binary"),
        (b"\n<!DOCTYPE html><html>", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
        (b"<svgftypisom\x00\x00", "image/svg+xml"),  # markup that only pretends to be an MP4 box
        (b"BM hello, this is text", None),
        (b"hello world", None),
    ],
)
def test_magic_bytes(head, media_type):
    assert sniff(head) == media_type


@pytest.mark.parametrize("declared", ["image/png", "video/mp4", "", "image/svg+xml"])
def test_unproven_bytes_are_never_media_whatever_the_declared_type(declared):
    for body in (b"hello", b"<!-- c -->" + b"x" * 600 + b"<svg/>", b"\x00\x01\x02\x03 binary junk"):
        with pytest.raises(PermanentError) as e:
            media_type_of(declared, body, mask=str)
        assert e.value.kind == "output"


# --------------------------------------------------------------------------------------------- platform keys


def test_platform_limit_keys_and_defaults():
    cfg = EasyAIPlatformConfig(kind="easyai", base_url="https://easyai.example.com")
    assert cfg.download_deadline_s == 120.0
    assert cfg.max_downloads_per_host == 2
    assert cfg.max_outputs == 16
    assert cfg.allow_private_hosts == []
    for name in ("download_deadline_s", "max_downloads_per_host", "max_outputs", "allow_private_hosts"):
        assert EasyAIPlatformConfig.model_fields[name].description
