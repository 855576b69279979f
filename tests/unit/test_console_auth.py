"""Console sign-in rules: configured users, roles, and the no-password marker."""

from __future__ import annotations

from workers.console import csrf
from workers.console.auth import Role, User, Users, hash_password


def test_users_sign_in_with_their_password_and_get_their_configured_role() -> None:
    users = Users(
        f"alice:operator:{hash_password('a-pw')},bob:viewer:{hash_password('b-pw')},proxy:operator:-"
    )
    assert users.authenticate("alice", "a-pw") == User("alice", Role.OPERATOR)
    assert users.authenticate("bob", "b-pw") == User("bob", Role.VIEWER)
    assert users.authenticate("alice", "b-pw") is None
    assert users.authenticate("nobody", "a-pw") is None
    assert users.authenticate("proxy", "-") is None  # `-`: no password login at all
    assert users.named("proxy") == User("proxy", Role.OPERATOR)  # ...but a trusted header may name them
    assert users.named("stranger") == User("stranger", Role.VIEWER)


def test_only_operators_may_act() -> None:
    assert User("o", Role.OPERATOR).may(Role.OPERATOR)
    assert User("v", Role.VIEWER).may(Role.VIEWER)
    assert not User("v", Role.VIEWER).may(Role.OPERATOR)


def test_a_csrf_token_is_per_session_and_changes_at_login() -> None:
    session: dict[str, object] = {}
    token = csrf.token(session)
    assert csrf.token(session) == token
    assert csrf.valid(session, token)
    assert not csrf.valid(session, "")
    assert not csrf.valid(session, None)
    assert not csrf.valid({}, token)
    csrf.rotate(session)
    assert not csrf.valid(session, token)
