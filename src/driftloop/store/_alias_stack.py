"""Where a rollback goes: an alias's moves replayed as a stack of the versions it held.

`_aliases.Aliases.rollback` reads the alias's (action, version) moves oldest first and
replays them (`replay`); `retention.Rollbacks` keeps each alias's stack up to date move by move
(`push`). A "rollback" move pops the version it rolled back from; any other move pushes its
version (None for a cleared alias). The target (`target`) is the nearest version below the
top that is not None and still stored (retention may have retired some), so
successive rollbacks walk back through the promotions (v1 → v2 → v3, rollback → v2,
rollback → v1) instead of bouncing between the last two.

A rollback move also pops whatever it skipped on the way to its version (the cleared entries
a rollback jumps over, or everything above an explicitly chosen older version), so the top of
the stack is always the version the alias holds after the move.

>>> rollback_target([("promote", 1), ("promote", 2), ("promote", 3), ("rollback", 2)])
1
>>> rollback_target([("promote", 1), ("promote", 2), ("rollback", 1), ("promote", 3)])
1
>>> rollback_target([("promote", 1), ("rollback", None)]) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ROLLBACK = "rollback"


def replay(moves: Iterable[tuple[str, int | None]]) -> list[int | None]:
    """The versions the alias holds and can go back to, oldest first; the last is current."""
    stack: list[int | None] = []
    for action, version in moves:
        push(stack, action, version)
    return stack


def push(stack: list[int | None], action: str | None, version: int | None) -> None:
    """Replay one more move onto `stack` (what `replay` does per move)."""
    if action != ROLLBACK or not stack:
        stack.append(version)
        return
    stack.pop()
    if version in stack:  # drop what the rollback skipped: the entries above its version
        del stack[len(stack) - stack[::-1].index(version):]
    else:  # a rollback to somewhere the stack never held: that is where the alias is now
        stack.append(version)


def target(stack: list[int | None], exists: Callable[[int], bool] = lambda _: True) -> int | None:
    """The version a rollback from `stack` goes to, passing over versions that no longer
    `exists` (retention retired them); None if there is no earlier version.

    >>> target([1, 2, 3], exists=lambda version: version != 2)
    1
    """
    return next((version for version in reversed(stack[:-1])
                 if version is not None and exists(version)), None)


def rollback_target(moves: Iterable[tuple[str, int | None]]) -> int | None:
    """The version a rollback after `moves` goes to; None if there is no earlier version."""
    return target(replay(moves))
