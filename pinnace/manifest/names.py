"""Kubernetes name and label syntax: DNS-1123 labels and subdomains, DNS-1035 labels, qualified names."""

from __future__ import annotations

import functools
import re
import unicodedata

from pinnace.manifest.lookalikes import LOOKALIKES

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[^=]+$")
_PERCENT = re.compile(r"^[0-9]+%$")


def lookalike_note(value: str) -> str:
    """A note naming the first character in the text that imitates ASCII syntax; "" if there is none."""
    for ch in value:
        if ch in LOOKALIKES:
            rep = LOOKALIKES[ch]
            name = unicodedata.name(ch, "UNKNOWN")
            like = f", which looks like {rep!r} but is not" if rep else ", an invisible character"
            return f" (it contains U+{ord(ch):04X} {name}{like})"
    return ""


# The public checks are pure and see the same keys, values and names over and over (the store
# validates every write): they are memoized.


def _with_note(value: str, message: str | None) -> str | None:
    return None if message is None else message + lookalike_note(value)


@functools.lru_cache(maxsize=8192)
def dns1123_label(value: str) -> str | None:
    return _with_note(value, _dns1123_label(value))


@functools.lru_cache(maxsize=8192)
def dns1123_subdomain(value: str) -> str | None:
    return _with_note(value, _dns1123_subdomain(value))


@functools.lru_cache(maxsize=8192)
def dns1035_label(value: str) -> str | None:
    return _with_note(value, _dns1035_label(value))


@functools.lru_cache(maxsize=8192)
def qualified_name(value: str) -> str | None:
    return _with_note(value, _qualified_name(value))


@functools.lru_cache(maxsize=8192)
def label_value(value: str) -> str | None:
    return _with_note(value, _label_value(value))


@functools.lru_cache(maxsize=8192)
def port_name(value: str) -> str | None:
    return _with_note(value, _port_name(value))


def _dns1123_label(value: str) -> str | None:
    """None if valid, else why not (names of namespaces, containers, volumes, ...)."""
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS1123_LABEL.match(value):
        return (
            f"{value!r} is not a valid name: use lower-case letters, digits and '-', starting and ending "
            "with a letter or digit (e.g. 'my-name')"
        )
    return None


def _dns1123_subdomain(value: str) -> str | None:
    """None if valid, else why not (names of most objects)."""
    if len(value) > 253:
        return f"{value!r} is longer than 253 characters"
    if not value or any(_dns1123_label(part) for part in value.split(".")):
        return (
            f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '.', starting and "
            "ending with a letter or digit (e.g. 'example.com' or 'my-name')"
        )
    return None


def _dns1035_label(value: str) -> str | None:
    """None if valid, else why not (Service names: must start with a letter)."""
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS1035_LABEL.match(value):
        return (
            f"{value!r} is not a valid name: use lower-case letters, digits and '-', starting with a letter "
            "and ending with a letter or digit (e.g. 'my-service')"
        )
    return None


def _qualified_name(value: str) -> str | None:
    """Label and annotation keys: [prefix/]name, the prefix a DNS subdomain, the name <= 63 characters."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or _dns1123_subdomain(prefix)):
        return f"{value!r}: the prefix before '/' must be a DNS subdomain such as example.com"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"{value!r} is not a valid key: the name part must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _label_value(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _LABEL_VALUE.match(value):
        return (
            f"{value!r} is not a valid label value: use letters, digits, '-', '_' and '.', starting and "
            "ending with a letter or digit (or leave it empty)"
        )
    return None


def _port_name(value: str) -> str | None:
    """IANA service names: <= 15 lower-case letters, digits and '-', with at least one letter."""
    if len(value) > 15 or not _IANA_SVC_NAME.match(value) or "--" in value or not re.search(r"[a-z]", value):
        return (
            f"{value!r} is not a valid port name: at most 15 lower-case letters, digits and '-', with at "
            "least one letter, no '--', not starting or ending with '-'"
        )
    return None


def env_name(value: str) -> str | None:
    if not _ENV_NAME.match(value):
        return f"{value!r} is not a valid environment variable name: it must be non-empty and have no '='"
    return None


def percent(value: str) -> int | None:
    """The number in "25%", or None when the text is not a percentage."""
    if not _PERCENT.match(value):
        return None
    return int(value[:-1])
