"""Language tags and names: "es", "es_MX", "es-mx" and "Spanish" all in one place."""

from __future__ import annotations

LANGUAGE_NAMES = {
    "pb": "Portuguese (Brazil)", "zt": "Chinese (traditional)",
    "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "ms": "Malay", "nb": "Norwegian", "ne": "Nepali", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}


def language_name(code: str) -> str:
    """"Spanish" for "es" (or "es_MX"); the code itself when unknown."""
    return LANGUAGE_NAMES.get(base_language(code), code)


def base_language(tag: str) -> str:
    """"es" from "es", "es_MX", "es-MX" or "ES"."""
    return tag.replace("-", "_").split("_")[0].lower()


def normalize_tag(tag: str) -> str:
    """"es_MX" from "es-mx"; "es" stays "es"."""
    parts = tag.replace("-", "_").split("_")
    if len(parts) == 1:
        return parts[0].lower()
    return f"{parts[0].lower()}_{parts[1].upper()}"
