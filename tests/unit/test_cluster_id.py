"""The local broker's cluster id must never look like an option to Kafka's storage tool."""

from streamlearn.kafka.local import new_cluster_id

# 0xF8 makes the first base64 character "-": the first 6 bits are 62.
DASHED = bytes([0xF8]) + bytes(15)
PLAIN = bytes(range(16))


def test_an_id_that_starts_with_a_dash_is_drawn_again():
    draws = iter([DASHED, DASHED, PLAIN])
    assert new_cluster_id(lambda: next(draws)) == "AAECAwQFBgcICQoLDA0ODw"


def test_ids_are_22_characters_of_urlsafe_base64():
    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22
    assert set(cluster_id) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
