"""Golden vectors: bytes written once and committed; today's codec must read them and write them identically."""

from __future__ import annotations

import pytest

from orderstream.schemas.catalog import MAGIC, default_catalog
from orderstream.schemas.codec import Codec
from tests.golden.vectors import VECTORS, Vector


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.file)
def test_golden_value_decodes_to_the_expected_message(codec: Codec, vector: Vector) -> None:
    value = vector.path.read_bytes()

    assert codec.decode(value) == vector.expected


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.file)
def test_golden_value_names_its_writer_schema_in_its_header(vector: Vector) -> None:
    value = vector.path.read_bytes()
    type_name = type(vector.expected).__name__
    catalog = default_catalog()
    version = vector.writer_version or catalog.newest(type_name).version
    entry = catalog.version(type_name, version)

    assert value[:2] == MAGIC
    assert value[2:10] == entry.fingerprint


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.writer_version is None], ids=lambda vector: vector.file)
def test_newest_version_golden_value_reencodes_byte_for_byte(codec: Codec, vector: Vector) -> None:
    value = vector.path.read_bytes()

    assert codec.encode(codec.decode(value)) == value


def test_old_version_golden_value_reencodes_with_the_newest_schema(codec: Codec) -> None:
    old = next(v for v in VECTORS if v.writer_version is not None)
    value = old.path.read_bytes()

    reencoded = codec.encode(codec.decode(value))

    assert reencoded[2:10] == default_catalog().newest(type(old.expected).__name__).fingerprint
    assert codec.decode(reencoded) == old.expected


# Every shipped schema version's fingerprint. Add a line for a new version; never change or remove one: records
# written with that schema are in the log forever and are found by this fingerprint.
PINNED_FINGERPRINTS = {
    "AuthorizePayment.v1": "84b25a087f622bcd",
    "CancelOrder.v1": "8308a609f726bbe6",
    "ConfirmDelivery.v1": "d3e43101c223e492",
    "DispatchShipment.v1": "bac820929b236df5",
    "PlaceOrder.v1": "7dea8aee8d6554c0",
    "ReleasePayment.v1": "80fc691972e01de3",
    "ReleaseStock.v1": "a34880d0be19248b",
    "ReserveStock.v1": "e89bc1c592febe67",
    "RestockSku.v1": "6eca8c4448a5a64e",
    "StockAdded.v1": "036c6728d93d6de1",
    "StockReleased.v1": "ea63a62cd38e5e3f",
    "StockReservationRejected.v1": "fc0bc53a88bc9b3c",
    "StockReserved.v1": "0a667ac9817be555",
    "OrderCancelled.v1": "d034552caa8dfd81",
    "OrderConfirmed.v1": "905fbfad9c3aa654",
    "OrderDelivered.v1": "aea3a854c81a6ca0",
    "OrderLineReservationUpdated.v1": "14ffcb53754125cb",
    "OrderPaymentUpdated.v1": "70d4cd6b74c1a0fb",
    "OrderPlaced.v1": "22f360c954bcf40e",
    "OrderPlaced.v2": "b2558414ef74deb1",
    "OrderRejected.v1": "a0a2dbc86fa96e62",
    "OrderShipped.v1": "c3c08ee609909a69",
    "PaymentAuthorized.v1": "ab14889982bf4316",
    "PaymentDeclined.v1": "ee1fa437c3885f9f",
    "PaymentRefunded.v1": "acc5ec8378928a33",
    "PaymentVoided.v1": "7aa5725caa343503",
    "Reply.v1": "88864fea33bc4b88",
    "ShipmentCancelled.v1": "fd9d24dc04c36653",
    "ShipmentCreated.v1": "e3af3b3c15bb2650",
    "ShipmentDelivered.v1": "d8aa841e2d7bbd4c",
    "ShipmentDispatched.v1": "43329ec9a7da0923",
    "ShipmentPending.v1": "b7c60c8295708e6d",
    "CapturePayment.v1": "9f9dfa6fe5e301ef",
    "DeliverOrder.v1": "0c852403a322d7d5",
    "RefundPayment.v1": "d0d9b9714af0ae63",
    "ReturnOrder.v1": "20d7d23f04673c36",
    "ReturnStock.v1": "b72171217adbaa9d",
    "ShipOrder.v1": "f97a166a2c26b303",
    "ShipStock.v1": "0136136fd12d1fe2",
    "StockReturned.v1": "4e09f26ca65494ce",
    "StockShipped.v1": "ebeb088a721d0cf9",
    "OrderReturned.v1": "ae1102371066e053",
    "PaymentCaptured.v1": "a18fe6451ca65b85",
}


def test_no_shipped_schema_was_edited_or_removed() -> None:
    shipped = {f"{entry.type_name}.v{entry.version}": entry.fingerprint_hex for entry in default_catalog().entries()}

    assert shipped == PINNED_FINGERPRINTS
