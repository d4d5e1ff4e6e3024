"""Battery and material-lot passports: data points as data, validation, integrity, exports.

See ``critflow passport --help`` and the README section "Passports".
"""

from critflow.passport.battery import battery_schema, validate_battery
from critflow.passport.identity import DigitalLink
from critflow.passport.lot import LotPassport, validate_document, validate_lot
from critflow.passport.views import view

__all__ = [
    "DigitalLink",
    "LotPassport",
    "battery_schema",
    "validate_battery",
    "validate_document",
    "validate_lot",
    "view",
]
