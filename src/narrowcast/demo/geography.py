"""Where the demo shop's customers live: country → region → city → neighbourhood.

Geographic segments are a hierarchy (DOMAIN.md), and send-time learning
needs each customer's real IANA zone, so every region carries its zone and
the locales spoken there. Spain includes the Canary Islands (Atlantic/Canary,
an hour behind the mainland); the United States spans three zones, so "send
at 10:00" means three different instants.
"""

from __future__ import annotations

from dataclasses import dataclass

from narrowcast.demo.chance import Chance, Weighted


@dataclass(frozen=True, slots=True)
class City:
    name: str
    population: float
    """Millions, roughly: how many customers the city gets relative to others."""
    neighborhoods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    timezone: str
    locales: tuple[tuple[str, float], ...]
    cities: tuple[City, ...]


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    share: float
    """Share of the shop's customers."""
    ios_share: float
    """Share of app users on iOS (the rest on Android)."""
    mobile_prefix: str
    regions: tuple[Region, ...]


@dataclass(frozen=True, slots=True)
class Place:
    country: Country
    region: Region
    city: City
    locales: Weighted[str]


COUNTRIES: tuple[Country, ...] = (
    Country(
        "ES",
        "Spain",
        0.32,
        0.30,
        "+34 6",
        (
            Region(
                "Comunidad de Madrid",
                "Europe/Madrid",
                (("es-ES", 1.0),),
                (
                    City(
                        "Madrid", 3.3, ("Salamanca", "Chamberí", "Malasaña", "Lavapiés", "Retiro")
                    ),
                    City("Alcalá de Henares", 0.2, ("Centro", "Espartales")),
                ),
            ),
            Region(
                "Cataluña",
                "Europe/Madrid",
                (("es-ES", 1.0),),
                (
                    City("Barcelona", 1.6, ("Eixample", "Gràcia", "El Born", "Sants", "Poblenou")),
                    City("Girona", 0.1, ("Barri Vell", "Santa Eugènia")),
                ),
            ),
            Region(
                "Andalucía",
                "Europe/Madrid",
                (("es-ES", 1.0),),
                (
                    City("Sevilla", 0.7, ("Triana", "Nervión", "Santa Cruz")),
                    City("Málaga", 0.6, ("Centro", "El Palo", "Teatinos")),
                ),
            ),
            Region(
                "Comunitat Valenciana",
                "Europe/Madrid",
                (("es-ES", 1.0),),
                (City("Valencia", 0.8, ("Ruzafa", "El Carmen", "Benimaclet")),),
            ),
            Region(
                "País Vasco",
                "Europe/Madrid",
                (("es-ES", 1.0),),
                (City("Bilbao", 0.35, ("Abando", "Deusto", "Casco Viejo")),),
            ),
            Region(
                "Canarias",
                "Atlantic/Canary",
                (("es-ES", 1.0),),
                (
                    City("Las Palmas de Gran Canaria", 0.38, ("Vegueta", "Triana", "Guanarteme")),
                    City("Santa Cruz de Tenerife", 0.21, ("Centro", "Salud-La Salle")),
                ),
            ),
        ),
    ),
    Country(
        "MX",
        "Mexico",
        0.18,
        0.25,
        "+52 55 ",
        (
            Region(
                "Ciudad de México",
                "America/Mexico_City",
                (("es-MX", 1.0),),
                (
                    City(
                        "Ciudad de México",
                        9.2,
                        ("Polanco", "Condesa", "Roma Norte", "Coyoacán", "Santa Fe"),
                    ),
                ),
            ),
            Region(
                "Jalisco",
                "America/Mexico_City",
                (("es-MX", 1.0),),
                (
                    City("Guadalajara", 1.4, ("Providencia", "Chapultepec", "Americana")),
                    City("Zapopan", 1.5, ("Puerta de Hierro", "Ciudad Granja")),
                ),
            ),
            Region(
                "Nuevo León",
                "America/Monterrey",
                (("es-MX", 1.0),),
                (City("Monterrey", 1.1, ("Centro", "Cumbres", "Obispado")),),
            ),
            Region(
                "Yucatán",
                "America/Merida",
                (("es-MX", 1.0),),
                (City("Mérida", 1.0, ("Centro", "García Ginerés", "Montejo")),),
            ),
        ),
    ),
    Country(
        "PL",
        "Poland",
        0.20,
        0.25,
        "+48 5",
        (
            Region(
                "Mazowieckie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (
                    City(
                        "Warszawa",
                        1.8,
                        ("Mokotów", "Śródmieście", "Wola", "Praga-Północ", "Ursynów"),
                    ),
                ),
            ),
            Region(
                "Małopolskie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (City("Kraków", 0.8, ("Kazimierz", "Stare Miasto", "Podgórze", "Nowa Huta")),),
            ),
            Region(
                "Pomorskie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (
                    City("Gdańsk", 0.47, ("Wrzeszcz", "Oliwa", "Śródmieście")),
                    City("Gdynia", 0.25, ("Orłowo", "Śródmieście")),
                ),
            ),
            Region(
                "Dolnośląskie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (City("Wrocław", 0.67, ("Nadodrze", "Krzyki", "Stare Miasto")),),
            ),
            Region(
                "Wielkopolskie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (City("Poznań", 0.54, ("Jeżyce", "Łazarz", "Stare Miasto")),),
            ),
            Region(
                "Łódzkie",
                "Europe/Warsaw",
                (("pl-PL", 1.0),),
                (City("Łódź", 0.67, ("Bałuty", "Śródmieście", "Widzew")),),
            ),
        ),
    ),
    Country(
        "GB",
        "United Kingdom",
        0.15,
        0.50,
        "+44 7",
        (
            Region(
                "England",
                "Europe/London",
                (("en-GB", 1.0),),
                (
                    City(
                        "London", 8.8, ("Camden", "Hackney", "Islington", "Brixton", "Shoreditch")
                    ),
                    City("Manchester", 0.55, ("Ancoats", "Didsbury", "Northern Quarter")),
                    City("Bristol", 0.47, ("Clifton", "Stokes Croft", "Bedminster")),
                ),
            ),
            Region(
                "Scotland",
                "Europe/London",
                (("en-GB", 1.0),),
                (
                    City("Edinburgh", 0.52, ("Leith", "Stockbridge", "Old Town")),
                    City("Glasgow", 0.63, ("Finnieston", "West End", "Merchant City")),
                ),
            ),
            Region(
                "Wales",
                "Europe/London",
                (("en-GB", 1.0),),
                (City("Cardiff", 0.36, ("Cathays", "Pontcanna", "Roath")),),
            ),
        ),
    ),
    Country(
        "US",
        "United States",
        0.15,
        0.55,
        "+1 ",
        (
            Region(
                "New York",
                "America/New_York",
                (("en-US", 0.9), ("es-US", 0.1)),
                (
                    City(
                        "New York",
                        8.3,
                        (
                            "Brooklyn Heights",
                            "Williamsburg",
                            "Harlem",
                            "Upper West Side",
                            "Astoria",
                        ),
                    ),
                ),
            ),
            Region(
                "Massachusetts",
                "America/New_York",
                (("en-US", 1.0),),
                (City("Boston", 0.65, ("Back Bay", "Beacon Hill", "South End")),),
            ),
            Region(
                "Illinois",
                "America/Chicago",
                (("en-US", 0.85), ("es-US", 0.15)),
                (City("Chicago", 2.7, ("Wicker Park", "Lincoln Park", "Pilsen")),),
            ),
            Region(
                "Texas",
                "America/Chicago",
                (("en-US", 0.75), ("es-US", 0.25)),
                (City("Austin", 0.96, ("South Congress", "East Austin", "Hyde Park")),),
            ),
            Region(
                "California",
                "America/Los_Angeles",
                (("en-US", 0.75), ("es-US", 0.25)),
                (
                    City("Los Angeles", 3.9, ("Silver Lake", "Santa Monica", "Echo Park")),
                    City("San Francisco", 0.8, ("Mission District", "SoMa", "Haight-Ashbury")),
                ),
            ),
            Region(
                "Washington",
                "America/Los_Angeles",
                (("en-US", 1.0),),
                (City("Seattle", 0.75, ("Capitol Hill", "Ballard", "Fremont")),),
            ),
        ),
    ),
)


def _places() -> Weighted[Place]:
    weights: dict[Place, float] = {}
    for country in COUNTRIES:
        population = sum(city.population for region in country.regions for city in region.cities)
        for region in country.regions:
            locales = Weighted(dict(region.locales))
            for city in region.cities:
                place = Place(country, region, city, locales)
                weights[place] = country.share * city.population / population
    return Weighted(weights)


PLACES = _places()


@dataclass(frozen=True, slots=True)
class Address:
    """Where one customer lives, and the zone and language that come with it."""

    country: str
    region: str
    city: str
    neighborhood: str
    timezone: str
    locale: str
    ios_share: float
    mobile_prefix: str


def draw_address(rng: Chance) -> Address:
    place = PLACES.pick(rng)
    return Address(
        country=place.country.code,
        region=place.region.name,
        city=place.city.name,
        neighborhood=rng.one_of(place.city.neighborhoods),
        timezone=place.region.timezone,
        locale=place.locales.pick(rng),
        ios_share=place.country.ios_share,
        mobile_prefix=place.country.mobile_prefix,
    )


def zones_of(country: str) -> frozenset[str]:
    """The IANA zones the demo uses in a country (for checks and tests)."""
    return frozenset(
        region.timezone for c in COUNTRIES if c.code == country for region in c.regions
    )


def locales_of(country: str) -> frozenset[str]:
    return frozenset(
        locale for c in COUNTRIES if c.code == country for r in c.regions for locale, _ in r.locales
    )
