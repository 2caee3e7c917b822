"""Synthetic personal data of clients: Colombian names, places, documents, contacts.

Only the raw zone ever sees these columns; identifiers (client_id ...) never carry any of them.
"""

from __future__ import annotations

import unicodedata

import numpy as np

FIRST_NAMES_F = (
    "María",
    "Ana",
    "Luz",
    "Sofía",
    "Valentina",
    "Camila",
    "Isabella",
    "Daniela",
    "Laura",
    "Natalia",
    "Andrea",
    "Paola",
    "Catalina",
    "Mónica",
    "Ángela",
    "Claudia",
    "Marcela",
    "Beatriz",
    "Lucía",
    "Inés",
    "Adriana",
    "Gloria",
    "Yolanda",
    "Mariana",
    "Juliana",
)
FIRST_NAMES_M = (
    "José",
    "Juan",
    "Carlos",
    "Luis",
    "Andrés",
    "Jorge",
    "Jesús",
    "Sebastián",
    "Santiago",
    "Julián",
    "Óscar",
    "Hernán",
    "Iván",
    "Felipe",
    "Alejandro",
    "Diego",
    "Camilo",
    "Mateo",
    "Nicolás",
    "Fabián",
    "Héctor",
    "Ramón",
    "Germán",
    "Martín",
    "Simón",
)
SURNAMES = (
    "Rodríguez",
    "Gómez",
    "González",
    "Martínez",
    "García",
    "López",
    "Hernández",
    "Sánchez",
    "Ramírez",
    "Pérez",
    "Díaz",
    "Muñoz",
    "Rojas",
    "Moreno",
    "Jiménez",
    "Álvarez",
    "Romero",
    "Vargas",
    "Castro",
    "Suárez",
    "Peña",
    "Ortiz",
    "Gutiérrez",
    "Quintero",
    "Londoño",
    "Cárdenas",
    "Ospina",
    "Zuluaga",
    "Restrepo",
    "Bermúdez",
    "Castañeda",
    "Ibáñez",
    "Núñez",
    "Acuña",
    "Patiño",
    "Mejía",
    "Montaño",
    "Benítez",
    "Valencia",
    "Córdoba",
)
# (city, department, weight)
CITIES = (
    ("Bogotá", "Bogotá D.C.", 30),
    ("Medellín", "Antioquia", 14),
    ("Cali", "Valle del Cauca", 10),
    ("Barranquilla", "Atlántico", 8),
    ("Cartagena", "Bolívar", 5),
    ("Bucaramanga", "Santander", 5),
    ("Cúcuta", "Norte de Santander", 4),
    ("Pereira", "Risaralda", 3),
    ("Manizales", "Caldas", 3),
    ("Ibagué", "Tolima", 3),
    ("Santa Marta", "Magdalena", 3),
    ("Villavicencio", "Meta", 3),
    ("Pasto", "Nariño", 2),
    ("Montería", "Córdoba", 2),
    ("Popayán", "Cauca", 2),
    ("Neiva", "Huila", 2),
    ("Tunja", "Boyacá", 1),
    ("Quibdó", "Chocó", 1),
)
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com", "correo.com.co")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


_SURNAMES = np.array(SURNAMES, dtype=object)
_F = np.array(FIRST_NAMES_F, dtype=object)
_M = np.array(FIRST_NAMES_M, dtype=object)
_ASCII = {s: _ascii(s).lower() for s in (*SURNAMES, *FIRST_NAMES_F, *FIRST_NAMES_M)}
_CITY = np.array([c[0] for c in CITIES], dtype=object)
_REGION = np.array([c[1] for c in CITIES], dtype=object)
_CITY_P = np.array([c[2] for c in CITIES], dtype=float) / sum(c[2] for c in CITIES)


def personal_columns(rng: np.random.Generator, gender: np.ndarray, is_sme: np.ndarray) -> dict:
    """Names, city/department, document, email and phone for n clients (gender codes F/M/X)."""
    n = len(gender)
    female = (gender == "F") | ((gender == "X") & (rng.random(n) < 0.5))
    first = np.where(female, _F[rng.integers(0, len(_F), n)], _M[rng.integers(0, len(_M), n)])
    s1 = _SURNAMES[rng.integers(0, len(_SURNAMES), n)]
    s2 = _SURNAMES[rng.integers(0, len(_SURNAMES), n)]
    full_name = first + " " + s1 + " " + s2
    city_idx = rng.choice(len(CITIES), size=n, p=_CITY_P)
    doc_type = np.where(
        is_sme,
        np.where(rng.random(n) < 0.7, "NIT", "CC"),
        rng.choice(np.array(["CC", "CE", "PA", "TI"]), size=n, p=[0.93, 0.04, 0.02, 0.01]),
    ).astype(object)
    doc_number = rng.integers(10_000_000, 1_299_999_999, n).astype(str).astype(object)
    tag = rng.integers(1, 999, n).astype(str)
    dom = np.array(EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_DOMAINS), n)]
    email = np.array(
        [f"{_ASCII[a]}.{_ASCII[b]}{t}@{d}" for a, b, t, d in zip(first, s1, tag, dom, strict=True)],
        dtype=object,
    )
    email[rng.random(n) < 0.12] = None
    phone = ("3" + rng.integers(100_000_000, 599_999_999, n).astype(str)).astype(object)
    phone[rng.random(n) < 0.05] = None
    return {
        "document_type": doc_type,
        "document_number": doc_number,
        "full_name": full_name,
        "city": _CITY[city_idx],
        "region": _REGION[city_idx],
        "email": email,
        "phone": phone,
    }
