"""The echo rule alone: which watch events are our own writes coming back, and when a parent runs again."""

from __future__ import annotations

from zenmodel_operator.runtime.echo import Echoes

PARENT = ("models", "iris")
SELDON = ("seldondeployments", "models", "iris")
STATUS = ("parents", "models", "iris")


def test_the_version_we_wrote_is_an_echo_and_any_other_is_news() -> None:
    echoes = Echoes()
    echoes.wrote(SELDON, 7)
    assert echoes.is_echo(SELDON, 7)
    assert not echoes.is_echo(SELDON, 8)  # someone wrote after us
    assert not echoes.is_echo(SELDON, 6)  # an older event is not ours either
    assert not echoes.is_echo(STATUS, 7)  # the same version of another object


def test_an_object_we_never_wrote_or_without_a_version_is_news() -> None:
    echoes = Echoes()
    assert not echoes.is_echo(SELDON, 7)
    echoes.wrote(SELDON, None)  # a server whose resourceVersion is not a number
    assert not echoes.is_echo(SELDON, None)


def test_only_the_last_write_counts() -> None:
    echoes = Echoes()
    echoes.wrote(SELDON, 7)
    echoes.wrote(SELDON, 9)
    assert not echoes.is_echo(SELDON, 7)
    assert echoes.is_echo(SELDON, 9)


def test_a_deleted_object_forgets_our_write() -> None:
    echoes = Echoes()
    echoes.wrote(SELDON, 7)
    echoes.gone(SELDON)
    assert not echoes.is_echo(SELDON, 7)


def test_nothing_arrived_during_a_reconcile_runs_it_once() -> None:
    assert not Echoes().runs_again(PARENT)


def test_an_echo_arriving_before_the_answer_to_our_write_is_judged_after_it() -> None:
    echoes = Echoes()
    echoes.arrived_during(PARENT, STATUS, 5)  # the watch is faster than the answer...
    echoes.wrote(STATUS, 5)  # ...which then says the version was ours
    assert not echoes.runs_again(PARENT)


def test_news_among_echoes_runs_the_parent_again_once() -> None:
    echoes = Echoes()
    echoes.wrote(STATUS, 5)
    echoes.arrived_during(PARENT, STATUS, 5)
    echoes.arrived_during(PARENT, SELDON, 3)  # Seldon updated its status meanwhile
    assert echoes.runs_again(PARENT)
    assert not echoes.runs_again(PARENT)  # judged once: the next reconcile starts afresh


def test_what_arrived_for_one_parent_never_runs_another() -> None:
    echoes = Echoes()
    echoes.arrived_during(PARENT, SELDON, 3)
    assert not echoes.runs_again(("models", "other"))
    assert echoes.runs_again(PARENT)


def test_a_forgotten_parent_does_not_run_again() -> None:
    echoes = Echoes()
    echoes.arrived_during(PARENT, SELDON, 3)
    echoes.forget(PARENT)
    assert not echoes.runs_again(PARENT)
