#!/usr/bin/env python3
"""Compare py3langid and lingua for naming the language of text read from photos.

Both are restricted to the OCR languages (en, es, fr, de, pt, it) and judged on
60 short phrases written for this script (10 per language, sign-like and
sentence-like), plus a few strings that carry no language (names, numbers,
words shared by several languages), which should come out unknown. Each library
runs in its own child process so that its memory figure is its own.

Prints accuracy, confident accuracy at the threshold the text stage uses, time
per call, load time, resident memory added and installed size.

    .venv/bin/python scripts/measure_langid.py [--threshold 0.8] [--repeat 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

LANGUAGES = ("en", "es", "fr", "de", "pt", "it")

PHRASES: dict[str, list[str]] = {
    "en": [
        "Keep off the grass",
        "Emergency exit only",
        "No parking at any time",
        "Wash your hands before returning to work",
        "Fresh bread baked every morning",
        "Please wait here until called",
        "The museum is closed on Mondays",
        "Platform 4 for trains to the airport",
        "Wet floor",
        "Turn left at the next traffic lights",
    ],
    "es": [
        "Prohibido fumar",
        "Salida de emergencia",
        "No estacionar frente a la puerta",
        "Lávese las manos antes de comer",
        "Pan recién horneado todas las mañanas",
        "Por favor espere su turno",
        "El museo cierra los lunes",
        "Andén 4 trenes hacia el aeropuerto",
        "Piso mojado",
        "Gire a la izquierda en el próximo semáforo",
    ],
    "fr": [
        "Défense de fumer",
        "Sortie de secours",
        "Stationnement interdit devant la porte",
        "Lavez-vous les mains avant de manger",
        "Pain frais cuit tous les matins",
        "Veuillez patienter ici",
        "Le musée est fermé le lundi",
        "Quai 4 pour les trains vers l'aéroport",
        "Sol glissant",
        "Tournez à gauche au prochain feu",
    ],
    "de": [
        "Rauchen verboten",
        "Notausgang",
        "Parken vor der Einfahrt verboten",
        "Bitte Hände waschen vor dem Essen",
        "Frisches Brot jeden Morgen",
        "Bitte hier warten",
        "Das Museum ist montags geschlossen",
        "Gleis 4 Züge zum Flughafen",
        "Vorsicht Rutschgefahr",
        "An der nächsten Ampel links abbiegen",
    ],
    "pt": [
        "Proibido fumar",
        "Saída de emergência",
        "Não estacione em frente ao portão",
        "Lave as mãos antes de comer",
        "Pão fresco todas as manhãs",
        "Por favor aguarde a sua vez",
        "O museu fecha às segundas-feiras",
        "Plataforma 4 comboios para o aeroporto",
        "Piso molhado",
        "Vire à esquerda no próximo semáforo",
    ],
    "it": [
        "Vietato fumare",
        "Uscita di emergenza",
        "Divieto di sosta davanti al cancello",
        "Lavarsi le mani prima di mangiare",
        "Pane fresco ogni mattina",
        "Si prega di attendere qui",
        "Il museo è chiuso il lunedì",
        "Binario 4 treni per l'aeroporto",
        "Pavimento bagnato",
        "Girare a sinistra al prossimo semaforo",
    ],
}

# No language can be told from these: the answer should be "unknown".
NO_LANGUAGE = ["TAXI", "Hotel", "5040", "BASRURKAR", "OK", "Pizza", "WC", "A4 100"]


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _load_py3langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))

    def guess(text: str) -> tuple[str, float]:
        lang, prob = identifier.classify(text)
        return lang, float(prob)

    return guess


def _load_lingua():
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in LANGUAGES]
    detector = LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()

    def guess(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        best = values[0]
        return best.language.iso_code_639_1.name.lower(), float(best.value)

    return guess


LIBRARIES = {"py3langid": ("py3langid", _load_py3langid), "lingua": ("lingua", _load_lingua)}


def measure_one(name: str, threshold: float, repeat: int) -> dict:
    """Load one library in this process and measure it (run in a child process)."""
    import numpy  # noqa: F401  (the pipeline has it loaded anyway; count only the library)

    module, loader = LIBRARIES[name]
    rss_before = _rss_kb()
    start = time.perf_counter()
    guess = loader()
    guess("warm up")
    load_s = time.perf_counter() - start
    rss_after = _rss_kb()

    items = [(lang, text) for lang, texts in PHRASES.items() for text in texts]
    correct = confident_correct = confident_wrong = 0
    misses = []
    answers = [(lang, *guess(text)) for lang, text in items]
    blanks = [guess(text)[1] for text in NO_LANGUAGE]
    sweep = {
        t: (
            sum(c >= t and g == w for w, g, c in answers),
            sum(c >= t and g != w for w, g, c in answers),
            sum(c < t for c in blanks),
        )
        for t in (0.5, 0.6, 0.7, 0.8, 0.9)
    }
    for (lang, text), (_, got, conf) in zip(items, answers, strict=True):
        if got == lang:
            correct += 1
        else:
            misses.append(f"{text!r}: {got} {conf:.2f} (want {lang})")
        if conf >= threshold:
            if got == lang:
                confident_correct += 1
            else:
                confident_wrong += 1
    unknown_ok = 0
    no_language = []
    for text in NO_LANGUAGE:
        got, conf = guess(text)
        no_language.append(f"{text!r}: {got} {conf:.2f}")
        unknown_ok += conf < threshold

    start = time.perf_counter()
    for _ in range(repeat):
        for _lang, text in items:
            guess(text)
    per_call_ms = (time.perf_counter() - start) * 1000 / (repeat * len(items))

    spec = importlib.util.find_spec(module)
    folder = Path(spec.origin).parent if spec and spec.origin else None
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6 if folder else 0.0
    return {
        "library": name,
        "phrases": len(items),
        "correct": correct,
        "confident_correct": confident_correct,
        "confident_wrong": confident_wrong,
        "no_language_unknown": unknown_ok,
        "no_language_total": len(NO_LANGUAGE),
        "ms_per_call": round(per_call_ms, 3),
        "load_s": round(load_s, 2),
        "rss_added_mb": round((rss_after - rss_before) / 1024, 1),
        "installed_mb": round(size_mb, 1),
        "sweep": sweep,
        "misses": misses,
        "no_language": no_language,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=0.8, help="confidence below which the answer is unknown")
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over the phrases")
    parser.add_argument("--child", choices=sorted(LIBRARIES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure_one(args.child, args.threshold, args.repeat)))
        return 0

    print(f"{sum(map(len, PHRASES.values()))} phrases in {', '.join(LANGUAGES)}; threshold {args.threshold}")
    for name, (module, _) in LIBRARIES.items():
        if importlib.util.find_spec(module) is None:
            print(f"\n{name}: not installed (pip install {'lingua-language-detector' if name == 'lingua' else name})")
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--child", name, "--threshold", str(args.threshold),
             "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(done.stdout)
        print(
            f"\n{name}: {r['correct']}/{r['phrases']} correct; at >= {args.threshold}: "
            f"{r['confident_correct']} correct, {r['confident_wrong']} wrong, "
            f"{r['phrases'] - r['confident_correct'] - r['confident_wrong']} unknown; "
            f"no-language strings unknown: {r['no_language_unknown']}/{r['no_language_total']}\n"
            f"  {r['ms_per_call']} ms per call, load {r['load_s']} s, "
            f"+{r['rss_added_mb']} MB resident, {r['installed_mb']} MB installed"
        )
        print("  threshold: confident correct / confident wrong / no-language strings unknown")
        for t, (ok, bad, blank) in r["sweep"].items():
            print(f"    {float(t):.1f}: {ok}/{r['phrases']}  {bad}  {blank}/{r['no_language_total']}")
        for line in r["misses"]:
            print(f"  miss: {line}")
        print(f"  no-language: {'; '.join(r['no_language'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
