"""Trust: our own keys (keystore), partners' signed cards, and the partner directory.

Who may send us what, and whose keys we encrypt to. Knows nothing of packages or the ledger.
"""

from laxchange.trust.area import Area, AreaSchool, build_area, read_area, read_schools_csv
from laxchange.trust.cards import (
    Partner,
    build_card,
    card_from,
    fingerprint_input,
    key_fingerprint,
    legacy_fingerprint_of,
    normalise_fingerprint,
    read_card,
)
from laxchange.trust.directory import CardVersion, PartnerAsOf, PartnerDirectory
from laxchange.trust.keystore import (
    ALG_HYBRID,
    ALG_X25519,
    ENCRYPTION,
    SIGNING,
    KeyInfo,
    Keyring,
    KeySet,
    KeyStore,
    check_party,
    role_for,
)

__all__ = [
    "ALG_HYBRID", "ALG_X25519", "ENCRYPTION", "SIGNING", "Area", "AreaSchool", "CardVersion", "KeyInfo", "KeySet",
    "KeyStore", "Keyring", "Partner", "PartnerAsOf", "PartnerDirectory", "build_area", "build_card", "card_from",
    "check_party", "fingerprint_input", "key_fingerprint", "legacy_fingerprint_of", "normalise_fingerprint",
    "read_area", "read_card", "read_schools_csv", "role_for",
]
