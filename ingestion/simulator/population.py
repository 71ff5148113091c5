"""Fixed vocabularies the simulator draws from: names, places, products, currencies.

Kept separate from the day-by-day logic so the generator reads as the business process it plays.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Anna Ben Clara David Eva Felix Greta Hugo Ida Jonas Klara Lars Mia Noah Olivia Paul "
    "Quinn Rosa Sami Tara Ugo Vera Will Xenia Yusuf Zoe Amir Beatriz Chen Dmitri Elif Farah"
).split()
LAST_NAMES = (
    "Andersson Becker Costa Dubois Eriksen Fischer Garcia Hansen Ivanova Jensen Kowalski "
    "Lambert Moreau Nielsen Okafor Petit Quint Rossi Schmidt Tanaka Ulrich Varga Weber "
    "Xu Young Zimmermann"
).split()
STREETS = "Main Street|Station Road|Church Lane|Park Avenue|Mill Road|High Street|Lake View".split("|")

# country -> (currency, cities, share of customers)
COUNTRIES: dict[str, tuple[str, tuple[str, ...], float]] = {
    "DE": ("EUR", ("Berlin", "Hamburg", "Munich"), 0.26),
    "FR": ("EUR", ("Paris", "Lyon", "Lille"), 0.18),
    "NL": ("EUR", ("Amsterdam", "Utrecht"), 0.10),
    "ES": ("EUR", ("Madrid", "Valencia"), 0.08),
    "GB": ("GBP", ("London", "Leeds", "Bristol"), 0.16),
    "US": ("USD", ("New York", "Austin", "Denver"), 0.14),
    "SE": ("SEK", ("Stockholm", "Malmo"), 0.08),
}

# EUR per unit of currency around which the simulated daily rate wanders.
BASE_EUR_RATES: dict[str, float] = {"EUR": 1.0, "GBP": 1.17, "USD": 0.92, "SEK": 0.087}

CATEGORIES: dict[str, tuple[int, int]] = {
    # category -> (min, max) price in EUR cents
    "books": (800, 4_000),
    "electronics": (2_500, 60_000),
    "home": (1_000, 15_000),
    "fashion": (1_500, 20_000),
    "toys": (900, 8_000),
    "sports": (1_200, 25_000),
}

CHANNELS = ("web", "mobile", "marketplace")
CHANNEL_SHARES = (0.55, 0.35, 0.10)

RETURN_REASONS = ("damaged", "wrong_size", "not_as_described", "changed_mind", "late_delivery")

EXPERIMENT_KEY = "checkout_button_2026"
VARIANTS = ("control", "treatment")
