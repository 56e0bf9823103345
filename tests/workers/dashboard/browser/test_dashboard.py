"""The dashboard as a person uses it, in a real browser: sign in, select and act, search, resolve, watch."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from db.models import FailedJob, Payment
from tests import factories
from tests.workers.dashboard.conftest import TOKEN
from tests.workers.dashboard.support import shop_rows
from tests.workers.dashboard.test_failed_jobs import _dead_row
from tests.workers.dashboard.test_payments import _paid


def _statuses(db) -> dict[int, str]:
    with db() as session:
        return dict(session.execute(select(FailedJob.id, FailedJob.status)).all())


def test_signing_in_from_a_deep_link_lands_on_that_page(page, db):
    _dead_row(db, 1)
    page.goto("/failed?status=dead")
    assert page.title() == "Sign in · Remit ops"
    page.fill("input[name=token]", "not-the-token-at-all")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "That token is not right."
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    assert page.url.endswith("/failed?status=dead")
    assert page.locator("h1").inner_text() == "Dead letters"


def test_retry_and_discard_a_selection_of_dead_letters(signed_in, db):
    page = signed_in
    first, second, third = (
        _dead_row(db, n, error=f"OperationalError: lost {n}\nSELECT * FROM x") for n in (1, 2, 3)
    )
    page.goto("/failed")
    summary = page.locator(f"tr:has(a[href='/failed/{first}']) details summary")
    assert summary.inner_text() == "OperationalError: lost 1"
    assert not page.locator(f"tr:has(a[href='/failed/{first}']) details pre").is_visible()  # folded away
    summary.click()
    assert "SELECT * FROM x" in page.locator(f"tr:has(a[href='/failed/{first}']) details pre").inner_text()

    page.check(f"input[name=id][value='{first}']")
    page.check(f"input[name=id][value='{second}']")
    page.click("button[value='retry:selected']")
    assert page.locator(".flash").inner_text() == "2 retried."
    assert _statuses(db) == {first: "retried", second: "retried", third: "dead"}

    assert (
        page.locator(f"input[name=id][value='{first}']").count() == 0
    )  # a retried row cannot be picked again
    page.check(f"input[name=id][value='{third}']")
    page.click("button[value='discard:selected']")
    assert page.locator(".flash").inner_text() == "1 discarded."
    assert _statuses(db) == {first: "retried", second: "retried", third: "discarded"}


def test_searching_a_payment_intent_id_opens_its_payment(signed_in, db, clock):
    payment_id = _paid(db, clock)
    page = signed_in
    page.fill("header input[name=q]", "pi_123")
    page.press("header input[name=q]", "Enter")
    assert page.url.endswith(f"/payments/{payment_id}")
    assert page.locator("h1").inner_text() == f"Payment {payment_id}"
    page.fill("header input[name=q]", "pi_nothing_here")
    page.press("header input[name=q]", "Enter")
    assert "Nothing matches" in page.locator("main").inner_text()


def test_resolving_a_flagged_payment_from_the_review_queue(signed_in, db):
    with db() as session:
        _, account, method = shop_rows(session)
        payment = factories.payment(
            session,
            account,
            method,
            status="succeeded",
            needs_review=True,
            stripe_payment_intent_id="pi_flag",
        )
        session.commit()
        payment_id = payment.id
    page = signed_in
    page.click("header >> text=Review")
    page.click(f"a[href='/payments/{payment_id}']")
    assert page.locator("#review").is_visible()
    page.fill("input[name=note]", "Customer confirmed by phone")
    page.click("text=Mark resolved")
    assert page.locator(".flash").inner_text() == "Done."
    assert page.locator("#review").count() == 0
    assert "Customer confirmed by phone" in page.locator("main").inner_text()  # on the timeline
    with db() as session:
        assert session.get(Payment, payment_id).needs_review is False


def test_the_overview_refreshes_itself_and_shows_as_of(signed_in, clock):
    page = signed_in
    page.select_option("select[name=refresh]", "5")
    page.click("text=Apply")
    first = page.locator("#as-of").get_attribute("datetime")
    clock.now += timedelta(minutes=1)
    with page.expect_event("load", timeout=15_000):
        pass  # the <meta> refresh reloads the page by itself
    assert page.locator("#as-of").get_attribute("datetime") != first
    page.click("a:text-is('Pause')")
    assert page.locator("strong:text-is('Paused')").is_visible()


def test_every_page_in_the_menu_opens_without_a_console_error_on_a_phone(browser, served, db, clock):
    payment_id = _paid(db, clock)
    _dead_row(db, 1)
    context = browser.new_context(base_url=served, viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    problems: list[str] = []
    phone.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    phone.on("pageerror", lambda e: problems.append(str(e)))
    phone.goto("/login")
    phone.fill("input[name=token]", TOKEN)
    phone.click("button[type=submit]")
    links = phone.locator("header a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert {
        "/failed",
        "/payments",
        "/review",
        "/events",
        "/emails",
        "/schedule",
        "/audit",
        "/metrics",
    } <= set(links)
    for path in [*links, f"/payments/{payment_id}", "/failed/1", "/queues/payments"]:
        answer = phone.goto(path)
        assert answer.status == 200, path
        if path != "/metrics":
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, f"{path} is {width}px wide on a 390px screen"  # tables scroll inside
    context.close()
    assert problems == []
