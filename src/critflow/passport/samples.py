"""Synthetic battery passports for demonstrations, tests and benchmarks (not real batteries)."""

from __future__ import annotations

from typing import Any

from critflow.passport.datapoints import data_points
from critflow.passport.identity import DigitalLink, gtin_check_digit

_GTIN_BODY = "0405412345678"  # a GS1 Germany prefix-style body; the check digit is computed


def sample_gtin() -> str:
    return _GTIN_BODY + str(gtin_check_digit(_GTIN_BODY))


def sample_battery(
    category: str = "ev", serial: str = "BAT-000001", soc: float = 80.0
) -> dict[str, Any]:
    """A complete, valid synthetic passport document of the given category."""
    values: dict[str, Any] = {
        "unique_identifier": DigitalLink.build(sample_gtin(), serial).uri,
        "responsible_operator": {"name": "Example Cells NV", "identifier": "BE0123456789"},
        "manufacturer_name": "Example Cells NV",
        "manufacturer_address": "Industrieweg 1, 2000 Antwerpen, Belgium",
        "manufacturer_web_and_email": "https://example.com, info@example.com",
        "battery_category": category,
        "model_and_serial": f"EXC-NMC811-75 / {serial}",
        "manufacturing_place": "Antwerpen, Belgium",
        "manufacturing_date": "2027-03",
        "battery_mass": {"value": 450.0, "unit": "kg"},
        "capacity": {"value": 200.0, "unit": "A*h"},
        "chemistry": "NMC811 / graphite",
        "hazardous_substances": [{"name": "LiPF6", "cas": "21324-40-3"}],
        "extinguishing_agent": "water (large quantities)",
        "critical_raw_materials": ["cobalt", "lithium", "nickel", "natural graphite", "manganese"],
        "recycled_cobalt_share": 12.0,
        "recycled_lithium_share": 4.0,
        "recycled_nickel_share": 3.5,
        "recycled_lead_share": 0.0,
        "renewable_content_share": 0.0,
        "minimum_voltage": {"value": 280.0, "unit": "V"},
        "nominal_voltage": {"value": 370.0, "unit": "V"},
        "maximum_voltage": {"value": 420.0, "unit": "V"},
        "original_power_capability": {"value": 150000.0, "unit": "W"},
        "power_limits": {"value": 180000.0, "unit": "W"},
        "expected_lifetime_cycles": 2000,
        "cycle_life_reference_test": "IEC 62660-1",
        "capacity_threshold_for_exhaustion": 70.0,
        "idle_temperature_range": {"lower": -30.0, "upper": 55.0},
        "warranty_period": {"value": 8, "unit": "year"},
        "initial_round_trip_efficiency": 95.0,
        "round_trip_efficiency_at_half_cycle_life": 92.0,
        "internal_resistance": {"value": 0.08, "unit": "ohm"},
        "cycle_life_test_c_rate": {"value": 0.33, "unit": "1/h"},
        "marking_article_13_4": ["separate collection symbol"],
        "declaration_of_conformity": {"url": "https://example.com/doc/EXC-NMC811-75.pdf"},
        "waste_prevention_information": "Return to any EV dealer or authorised treatment facility.",
        "detailed_composition": {
            "cathode": "LiNi0.8Mn0.1Co0.1O2",
            "anode": "graphite",
            "electrolyte": "LiPF6 in EC/EMC",
        },
        "component_part_numbers": ["MOD-12S-001", "BMS-3.2"],
        "spare_part_sources": ["parts@example.com"],
        "dismantling_information": {"url": "https://example.com/dismantling/EXC-NMC811-75"},
        "safety_measures": "Discharge below 5 % state of charge before opening; insulated tools.",
        "test_report_results": {"url": "https://example.com/tests/EXC-NMC811-75"},
        "rated_capacity_in_use": {"value": 200.0, "unit": "A*h"},
        "capacity_fade": 0.0,
        "power": {"value": 150000.0, "unit": "W"},
        "power_fade": 0.0,
        "internal_resistance_in_use": {"value": 0.08, "unit": "ohm"},
        "internal_resistance_increase": 0.0,
        "expected_lifetime_cycles_in_use": 2000,
        "expected_lifetime_years": {"value": 12, "unit": "year"},
        "state_of_certified_energy": 100.0,
        "remaining_capacity": {"value": 200.0, "unit": "A*h"},
        "remaining_power_capability": {"value": 150000.0, "unit": "W"},
        "remaining_round_trip_efficiency": 95.0,
        "self_discharge_evolution": {"value": 2.0, "unit": "percent/month"},
        "ohmic_resistance": {"value": 0.08, "unit": "ohm"},
        "battery_status": "original",
        "number_of_cycles": 0,
        "marking_article_13_5": ["no Cd or Pb symbol required"],
        "round_trip_efficiency_in_use": 95.0,
        "round_trip_efficiency_fade": 0.0,
        "negative_events": [{"date": "2027-05-02", "event": "none recorded"}],
        "operating_conditions": [{"month": "2027-04", "minutes_above_45_degC": 0}],
        "state_of_charge": soc,
    }
    data = {
        p.field: values[p.field]
        for p in data_points()
        if p.field in values
        and p.applicability[category] in ("mandatory", "conditional", "optional")
    }
    return {"kind": "battery", "category": category, "data": data}
