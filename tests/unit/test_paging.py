import pytest

from worldland.domain.paging import page_of
from worldland.errors import InvalidInput


def test_pages_cover_every_item_once() -> None:
    items = list(range(7))
    seen, token = [], None
    while True:
        page, token = page_of(items, 3, token)
        seen += page
        if token is None:
            break
    assert seen == items


@pytest.mark.parametrize("token", ["garbage", "b2Zmc2V0Oi0x", "!!!"])
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        page_of([1, 2], 1, token)
    assert refused.value.details[0].field == "next_token"
