"""The sweep axes, declared once, and the profiles' values along them."""

from __future__ import annotations

import dataclasses

import pytest

from anybench._sweep import AXES, LOAD, PROFILES, N, Profile, scales


def test_each_axis_is_a_field_of_every_profile() -> None:
    assert list(AXES) == [N.name, LOAD.name]
    fields = {field.name for field in dataclasses.fields(Profile)}
    assert set(AXES) <= fields
    assert len({axis.symbol for axis in AXES.values()}) == len(AXES)
    assert len({axis.option for axis in AXES.values()}) == len(AXES)


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_stay_at_or_above_each_axis_lowest_value(name: str) -> None:
    for axis in AXES.values():
        values = PROFILES[name].values(axis)
        assert values == PROFILES[name].values(axis.name)
        assert values == tuple(sorted(values))
        assert min(values) >= axis.lowest, (name, axis.name)


def test_scales_default_to_n_and_cap_at_max_n() -> None:
    assert scales("full", max_n=1_000) == tuple(n for n in PROFILES["full"].n if n <= 1_000)
    assert scales("quick", axis=LOAD) == PROFILES["quick"].load


def test_an_unknown_axis_is_named_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown sweep axis 'm'; choose from: n, load$"):
        PROFILES["quick"].values("m")
