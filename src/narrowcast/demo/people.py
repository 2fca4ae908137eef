"""Who the demo customers are: names that fit their language, emails, phones, companies.

Names follow local custom — two surnames in Spain and Mexico, the feminine
form of Polish surnames (Kowalski → Kowalska) — so templates that greet
"{{ first_name }}" read naturally in every locale. Every email address is on
a domain reserved for examples (RFC 2606), so a demo send can never reach a
real person.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from narrowcast.demo.chance import Chance
from narrowcast.demo.geography import Address

_FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "female": (
            "María", "Lucía", "Carmen", "Ana", "Laura", "Sofía", "Paula", "Marta", "Elena",
            "Isabel", "Valentina", "Ximena", "Guadalupe", "Fernanda", "Camila", "Alba",
        ),
        "male": (
            "Antonio", "José", "Manuel", "David", "Javier", "Carlos", "Alejandro", "Pablo",
            "Daniel", "Sergio", "Juan", "Diego", "Luis", "Santiago", "Mateo", "Hugo",
        ),
    },
    "pl": {
        "female": (
            "Anna", "Maria", "Katarzyna", "Małgorzata", "Agnieszka", "Zofia", "Magdalena",
            "Joanna", "Aleksandra", "Natalia", "Julia", "Ewa", "Barbara", "Zuzanna",
        ),
        "male": (
            "Piotr", "Krzysztof", "Andrzej", "Tomasz", "Paweł", "Michał", "Jakub", "Marcin",
            "Łukasz", "Kamil", "Mateusz", "Wojciech", "Grzegorz", "Szymon",
        ),
    },
    "en": {
        "female": (
            "Olivia", "Emma", "Amelia", "Sophie", "Charlotte", "Grace", "Emily", "Jessica",
            "Hannah", "Ava", "Chloe", "Megan", "Isla", "Priya",
        ),
        "male": (
            "Oliver", "George", "Harry", "Jack", "James", "William", "Thomas", "Michael",
            "Daniel", "Ethan", "Noah", "Samuel", "Arjun", "Liam",
        ),
    },
}  # fmt: skip

_SURNAMES: dict[str, tuple[str, ...]] = {
    "es": (
        "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
        "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Álvarez", "Romero",
        "Torres", "Navarro", "Ramírez", "Flores", "Cruz", "Reyes", "Morales",
    ),
    "pl": (
        "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
        "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur",
        "Krawczyk", "Piotrowski", "Grabowski", "Pawłowski", "Michalski", "Zawadzki",
    ),
    "en": (
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Johnson",
        "Miller", "Clark", "Walker", "Wright", "Robinson", "Thompson", "Hughes", "Moore",
        "Anderson", "Martin", "Lee", "Patel", "Khan", "Murphy", "O'Brien",
    ),
}  # fmt: skip

# Polish surnames ending in -ski/-cki/-dzki take -ska/-cka/-dzka for women.
_POLISH_FEMININE = re.compile(r"(sk|ck|dzk)i$")

_COMPANY_STEMS = (
    "Altamira", "Nordvik", "Bluefield", "Vistula", "Meridian", "Solano", "Harbour", "Cobalt",
    "Ribera", "Tatra", "Oakridge", "Halcón",
)  # fmt: skip
_COMPANY_TRADES = ("Logistics", "Systems", "Analytics", "Foods", "Energy", "Consulting", "Retail")
_COMPANY_SUFFIX = {
    "ES": "S.L.",
    "MX": "S.A. de C.V.",
    "PL": "Sp. z o.o.",
    "GB": "Ltd",
    "US": "Inc.",
}
_GOVERNMENT = {
    "ES": "Ayuntamiento de {city}",
    "MX": "Gobierno Municipal de {city}",
    "PL": "Urząd Miasta {city}",
    "GB": "{city} City Council",
    "US": "City of {city}",
}
_INDUSTRIES = ("logistics", "software", "hospitality", "manufacturing", "retail", "education")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True, slots=True)
class Person:
    first_name: str
    last_name: str
    gender: str | None
    birth_date: date
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    domain: str
    industry: str
    size: str


def draw_person(
    rng: Chance, address: Address, number: int, ages: tuple[int, int], today: date
) -> Person:
    """A person living at ``address``; ``number`` makes the email address unique."""
    language = address.locale[:2]
    roll = rng.random()
    gender = "female" if roll < 0.49 else "male" if roll < 0.98 else None
    first = rng.one_of(_FIRST_NAMES[language][gender or rng.one_of(("female", "male"))])
    surnames = _SURNAMES[language]
    last = rng.one_of(surnames)
    if language == "pl" and gender == "female":
        last = _POLISH_FEMININE.sub(lambda m: m.group(1) + "a", last)
    if language == "es":
        last = f"{last} {rng.one_of(surnames)}"
    age_days = rng.between(ages[0] * 365, ages[1] * 365 + 364)
    email = f"{_ascii(first)}.{_ascii(last.split()[0])}.{number}@{rng.one_of(_EMAIL_DOMAINS)}"
    phone = None
    if rng.random() < 0.6:
        digits = f"{rng.between(0, 10**8 - 1):08d}"
        phone = f"{address.mobile_prefix}{digits[:2]} {digits[2:5]} {digits[5:]}"
    return Person(first, last, gender, today - timedelta(days=age_days), email, phone)


def draw_organisation(rng: Chance, address: Address, customer_type: str) -> Organisation:
    if customer_type == "government":
        name = _GOVERNMENT[address.country].format(city=address.city)
        domain = f"{_slug(address.city)}-{address.country.lower()}.example"
        return Organisation(name, domain, "public_sector", rng.one_of(("250-999", "1000+")))
    short = f"{rng.one_of(_COMPANY_STEMS)} {rng.one_of(_COMPANY_TRADES)}"
    return Organisation(
        f"{short} {_COMPANY_SUFFIX[address.country]}",
        f"{_slug(short)}.example",
        rng.one_of(_INDUSTRIES),
        rng.one_of(("10-49", "50-249", "250-999")),
    )


def work_email(person: Person, organisation: Organisation) -> str:
    """The same mailbox name at the organisation's domain (reserved .example TLD)."""
    return f"{person.email.split('@')[0]}@{organisation.domain}"


def _fold(text: str) -> str:
    # NFKD splits accents off letters; Polish ł has no decomposition, so map it by hand.
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return folded.encode("ascii", "ignore").decode().lower()


def _ascii(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _fold(text))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _fold(text)).strip("-")
