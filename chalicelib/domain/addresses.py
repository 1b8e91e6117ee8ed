"""Postal addresses as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    name: str
    street: str
    house_number: str
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2

    def lines(self) -> list[str]:
        """The address as printed on a label, one line each."""
        return [
            self.name,
            f"{self.street} {self.house_number}".strip(),
            f"{self.postal_code} {self.city}".strip(),
            self.country,
        ]

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Address:
        return cls(
            name=data["name"],
            street=data["street"],
            house_number=data.get("house_number", ""),
            postal_code=data["postal_code"],
            city=data["city"],
            country=data["country"],
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "street": self.street,
            "house_number": self.house_number,
            "postal_code": self.postal_code,
            "city": self.city,
            "country": self.country,
        }
