"""People's own contact methods (`/oncall notify`): listed beside the config's defaults,
added, removed, and tested with "Send me a test page" (an outbox row, like any notification)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.config.paging import Delay
from bot.delivery.kinds import OutboxKind
from bot.domain.contacts import METHOD_TYPES, Listed, Method, Rule, check_address
from bot.errors import NotFound, UserError
from bot.notify.guard import check_apprise_url
from bot.outgoing import Refused
from bot.services.transactions import in_write
from store.contact_methods import ContactMethodRepository, OwnMethod
from store.session import Database
from store.unit_of_work import UnitOfWork

MAX_OWN_METHODS = 10
_DELAY: TypeAdapter[timedelta] = TypeAdapter(Delay)


async def methods_and_rules(
    session: AsyncSession, config: PulseOpsConfig, user: str
) -> tuple[list[Method], list[Rule]]:
    """What a page of `user` uses: their own methods if they set any, else the config's."""
    own = await ContactMethodRepository(session).list(user=user)
    if own:
        methods = [Method(m.method_id, m.method_type, m.destination) for m in own]
        rules = [Rule(timedelta(seconds=m.after_seconds), (m.method_id,)) for m in own]
        return methods, rules
    contact = config.contact(user)
    if contact is None:
        return [], []
    methods = [Method(m.id, m.type, m.destination) for m in contact.methods]
    return methods, [Rule(r.after, r.methods) for r in contact.rules]


class ContactMethods:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.on_commit = on_commit

    async def listed(self, *, user: str) -> list[Listed]:
        """The person's methods in the order they are used."""
        async with self.db.read() as session:
            own = await ContactMethodRepository(session).list(user=user)
        if own:
            return [self._own(m) for m in own]
        contact = self.config.contact(user)
        if contact is None:
            return []
        first: dict[str, timedelta] = {}
        for rule in contact.rules:
            for name in rule.methods:
                first[name] = min(first.get(name, rule.after), rule.after)
        found = [
            Listed(Method(m.id, m.type, m.destination), first.get(m.id, timedelta(0)), own=False)
            for m in contact.methods
            if m.id in first or not contact.rules
        ]
        return sorted(found, key=lambda item: item.after)

    @staticmethod
    def _own(m: OwnMethod) -> Listed:
        return Listed(
            Method(m.method_id, m.method_type, m.destination),
            timedelta(seconds=m.after_seconds),
            own=True,
            tested=m.test_result,
        )

    async def add(self, *, user: str, method_type: str, destination: str, after: str) -> None:
        """Add a method; UserError naming the field (`type`, `destination`, `after`)."""
        if method_type not in METHOD_TYPES:
            raise UserError("Pick a type.", fields={"type": "pick e-mail, SMS, call or push"})
        destination = destination.strip()
        try:
            check_address(method_type, destination)
        except ValueError as exc:
            raise UserError(str(exc), fields={"destination": str(exc)}) from None
        if method_type == "apprise":
            try:
                await check_apprise_url(destination, self.config.allowed_hosts)
            except Refused as exc:
                raise UserError(str(exc), fields={"destination": str(exc)}) from None
        try:
            delay = _DELAY.validate_python(after.strip() or "0m")
        except ValidationError:
            why = "a delay such as 0m, 30s, 2m or 1h30m"
            raise UserError(why, fields={"after": why}) from None

        async def work(uow: UnitOfWork) -> None:
            repo = ContactMethodRepository(uow.session)
            own = await repo.list(user=user)
            if len(own) >= MAX_OWN_METHODS:
                why = f"at most {MAX_OWN_METHODS} methods: remove one first"
                raise UserError(why, fields={"destination": why})
            taken = {m.method_id for m in own}
            n = 1
            while f"{method_type}-{n}" in taken:
                n += 1
            await repo.add(
                user=user,
                method_id=f"{method_type}-{n}",
                method_type=method_type,
                destination=destination,
                after_seconds=int(delay.total_seconds()),
                now=self.clock.now(),
            )

        await in_write(self.db, work, on_commit=self.on_commit)

    async def remove(self, *, user: str, method_id: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            if not await ContactMethodRepository(uow.session).remove(
                user=user, method_id=method_id
            ):
                raise NotFound("That method was already removed.")

        await in_write(self.db, work, on_commit=self.on_commit)

    async def send_test(self, *, user: str, method_id: str) -> Method:
        """Queue a test notification to one of the person's methods (own or default)."""
        listed = {item.method.id: item for item in await self.listed(user=user)}
        item = listed.get(method_id)
        if item is None:
            raise NotFound("That method no longer exists.")
        method = item.method

        async def work(uow: UnitOfWork) -> None:
            await uow.enqueue(
                kind=OutboxKind.NOTIFY_TEST,
                now=self.clock.now(),
                payload={
                    "user": user,
                    "method_id": method.id,
                    "type": method.type,
                    "destination": method.destination,
                    "own": item.own,
                },
            )

        await in_write(self.db, work, on_commit=self.on_commit)
        return method
