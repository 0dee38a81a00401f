"""The storefront and the admin console in headless Chromium (Debian's, driven by
Playwright), against a real server: an admin sets up the shop, a customer signs up, tops
up, claims a coupon, buys two products with it, sees the order and cancels it. Screenshots
of the main pages are taken on every run into a temporary folder, and saved under
docs/screenshots/ only when asked (`make screenshots`, which sets SCREENSHOTS=docs), so a
test run never rewrites tracked files."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.backends import REQUIRED
from tests.e2e.conftest import live_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
         if os.environ.get("SCREENSHOTS") == "docs"
         else Path(tempfile.mkdtemp(prefix="ecommerce-screenshots-")))
# Playwright waits for each state it is told to expect; 5 s by default, which a busy
# machine can take to render a page: the bound is generous, the states are the test.
expect.set_options(timeout=30_000)
# No network but loopback here: keep Chromium from reaching for Google's services.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        reason = "chromium is not installed (make test installs Debian's chromium)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        await browser.close()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def go(page: Page, url: str, route: str) -> None:
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-ready", route)


async def log_in(page: Page, base: str, username: str, password: str) -> None:
    await go(page, f"{base}/shop/#/login", "#/login")
    await page.get_by_label("아이디").fill(username)
    await page.get_by_label("비밀번호").fill(password)
    await page.get_by_role("button", name="로그인").click()
    await expect(page.get_by_role("status")).to_contain_text(f"환영합니다, {username}님")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_shop_day_in_the_browser(clean_db, browser):
    async with live_server(clean_db, workers=1, ADMIN_USERNAME="admin",
                           ADMIN_PASSWORD="admin-password") as server:
        base = server.url

        # The admin sets up a category, two products and a coupon.
        admin = await (await browser.new_context(viewport={"width": 1280, "height": 900},
                                                 locale="ko-KR")).new_page()
        await log_in(admin, base, "admin", "admin-password")
        await go(admin, f"{base}/shop/#/admin/categories", "#/admin/categories")
        await admin.get_by_label("슬러그").fill("gadgets")
        await admin.get_by_label("이름").fill("디지털 기기")
        await admin.get_by_role("button", name="등록").click()
        await expect(admin.get_by_role("cell", name="gadgets")).to_be_visible()

        await go(admin, f"{base}/shop/#/admin/products", "#/admin/products")
        for name, price, stock in (("무선 키보드", "30000", "10"),
                                   ("블루투스 마우스", "15000", "5")):
            form = admin.get_by_role("form", name="등록")
            await form.get_by_label("이름").fill(name)
            await form.get_by_label("가격").fill(price)
            await form.get_by_label("재고").fill(stock)
            await form.get_by_role("button", name="등록").click()
            await expect(admin.get_by_role("status")).to_contain_text(f"등록되었습니다: {name}")
            await expect(admin.get_by_role("cell", name=re.compile(name))).to_be_visible()
        # The stock change box starts empty (no accidental +10), and names show, not slugs.
        await expect(admin.get_by_label("재고 증감 무선 키보드")).to_have_value("")
        await expect(admin.get_by_role("cell", name=re.compile("무선 키보드"))).to_contain_text(
            "디지털 기기")
        await shot(admin, "admin-products")

        await go(admin, f"{base}/shop/#/admin/coupons", "#/admin/coupons")
        await admin.get_by_label("쿠폰 코드").fill("WELCOME10")
        await admin.get_by_label("이름", exact=True).fill("신규 가입 10%")
        await admin.get_by_label("할인 방식").select_option("PERCENT")
        await admin.get_by_label("할인 값").fill("10")
        await admin.get_by_label("최대 할인").fill("5000")
        await admin.get_by_label("발행 수량").fill("100")
        await admin.get_by_role("button", name="등록").click()
        await expect(admin.get_by_role("cell", name="WELCOME10")).to_be_visible()

        # A customer, on a phone-sized screen: sign up, log in, top up.
        customer = await (await browser.new_context(viewport={"width": 390, "height": 844},
                                                    locale="ko-KR")).new_page()
        await go(customer, f"{base}/shop/#/signup", "#/signup")
        await customer.get_by_label("아이디").fill("buyer1")
        await customer.get_by_label("비밀번호").fill("buyer-password")
        await customer.get_by_role("button", name="회원가입").click()
        await expect(customer.get_by_role("status")).to_contain_text("가입되었습니다")
        await log_in(customer, base, "buyer1", "buyer-password")
        # On a phone the header takes two lines at most: brand and language, then the menu.
        header = await customer.locator("header.bar").bounding_box()
        assert header is not None and header["height"] < 110, header
        await go(customer, f"{base}/shop/#/orders", "#/orders")
        await expect(customer.get_by_text("주문 내역이 없습니다.")).to_be_visible()
        await expect(customer.locator(".pager")).to_have_count(0)  # no pager on an empty list
        await go(customer, f"{base}/shop/#/wallet", "#/wallet")
        # No card gateway here: the demo's top-up credits at once, and says it is a demo.
        await expect(customer.locator("#demo-topup")).to_contain_text("데모")
        await expect(customer.locator("#topup-card")).to_have_count(0)
        await customer.get_by_label("금액").fill("100000")
        await customer.get_by_role("button", name="충전하기").click()
        await expect(customer.locator("#balance")).to_contain_text("100,000")
        await shot(customer, "wallet")

        # Claim the coupon from the ones on offer, which show what is left.
        await go(customer, f"{base}/shop/#/coupons", "#/coupons")
        offer = customer.locator("#offers article", has_text="WELCOME10")
        await expect(offer).to_contain_text("남은 수량 100 / 100")
        await offer.get_by_role("button", name="쿠폰 받기 WELCOME10").click()
        await expect(customer.get_by_role("status")).to_contain_text("쿠폰을 받았습니다")
        await expect(customer.get_by_role("cell", name=re.compile("신규 가입 10%"))).to_be_visible()
        held = customer.locator("#offers article", has_text="WELCOME10")
        await expect(held.locator("[data-held]")).to_have_text("보유 중")  # not "available"
        await expect(held).to_contain_text("최대 ₩5,000")  # a percentage's cap
        # Looked up by its code, the count has gone down by the one just claimed.
        await customer.get_by_label("쿠폰 코드").fill("welcome10")
        await customer.get_by_role("button", name="조회").click()
        await expect(customer.locator("#remaining")).to_contain_text("남은 수량 99 / 100")

        # Browse, and put one keyboard and two mice in the cart.
        await go(customer, f"{base}/shop/#/", "#/")
        await expect(customer.get_by_role("link", name="무선 키보드")).to_be_visible()
        await expect(customer.locator("main")).not_to_contain_text("null")
        await shot(customer, "storefront-phone")
        for name, quantity in (("무선 키보드", "1"), ("블루투스 마우스", "2")):
            await go(customer, f"{base}/shop/#/", "#/")
            await customer.get_by_role("link", name=name).first.click()
            await expect(customer.locator("#stock")).to_be_visible()
            await expect(customer.get_by_text("카테고리: 디지털 기기")).to_be_visible()
            await customer.get_by_label("수량").fill(quantity)
            await customer.get_by_role("button", name="장바구니에 담기").click()
            await expect(customer.get_by_role("status")).to_contain_text("장바구니에 담았습니다")
        await shot(customer, "product")

        # Six mice and a keyboard: 120,000 won, more than the balance, and more mice than
        # there are. Each is a clear error, and nothing is bought.
        await go(customer, f"{base}/shop/#/cart", "#/cart")
        mice = customer.get_by_label("수량 블루투스 마우스")
        await mice.fill("6")
        await mice.dispatch_event("change")
        await expect(customer.get_by_text("상품 금액: ₩120,000")).to_be_visible()
        # The quote says so before paying, in Korean only.
        await expect(customer.locator("#quote")).to_contain_text(
            "재고가 부족합니다: 블루투스 마우스")
        await customer.get_by_role("button", name="결제하기").click()
        await expect(customer.get_by_role("alert")).to_have_text("잔액이 부족합니다")
        await go(customer, f"{base}/shop/#/wallet", "#/wallet")
        await customer.get_by_label("금액").fill("100000")
        await customer.get_by_role("button", name="충전하기").click()
        await expect(customer.locator("#balance")).to_contain_text("200,000")
        await go(customer, f"{base}/shop/#/cart", "#/cart")
        await customer.get_by_role("button", name="결제하기").click()
        await expect(customer.get_by_role("alert")).to_contain_text("재고가 부족합니다")
        await expect(customer.get_by_role("alert")).to_contain_text("블루투스 마우스")
        mice = customer.get_by_label("수량 블루투스 마우스")
        await mice.fill("2")
        await mice.dispatch_event("change")
        await expect(customer.get_by_text("상품 금액: ₩60,000")).to_be_visible()

        # No gateway: only the balance is offered, and the cart says why.
        await expect(customer.get_by_label("결제 수단").locator("option")).to_have_count(1)
        await expect(customer.locator("#no-card")).to_contain_text("PAYMENT_GATEWAY_URL")
        # Check out with the coupon: 60,000 less 10 % capped at 5,000, shown before paying.
        await expect(customer.locator("#quote-pay")).to_have_text("₩60,000")
        await customer.get_by_label("쿠폰").select_option("WELCOME10")
        await expect(customer.locator("#quote-discount")).to_contain_text("₩5,000")
        await expect(customer.locator("#quote-pay")).to_have_text("₩55,000")
        await expect(customer.locator("#quote-balance")).to_have_text("₩200,000")
        await shot(customer, "cart")
        await customer.get_by_role("button", name="결제하기").click()
        await expect(customer.get_by_role("status")).to_contain_text("주문이 완료되었습니다")
        await expect(customer.get_by_role("status")).to_contain_text("55,000")
        await expect(customer.get_by_role("cell", name="결제 완료")).to_be_visible()
        await shot(customer, "orders")
        await go(customer, f"{base}/shop/#/wallet", "#/wallet")
        await expect(customer.locator("#balance")).to_contain_text("145,000")

        # Cancel it, after saying no once to the confirmation: refunded, the coupon is back.
        await go(customer, f"{base}/shop/#/orders", "#/orders")
        customer.once("dialog", lambda dialog: dialog.dismiss())
        await customer.get_by_role("button", name="주문 취소").click()
        await expect(customer.get_by_role("cell", name="결제 완료")).to_be_visible()
        customer.once("dialog", lambda dialog: dialog.accept())
        await customer.get_by_role("button", name="주문 취소").click()
        await expect(customer.get_by_role("cell", name="취소됨")).to_be_visible()
        await go(customer, f"{base}/shop/#/wallet", "#/wallet")
        await expect(customer.locator("#balance")).to_contain_text("200,000")
        await go(customer, f"{base}/shop/#/coupons", "#/coupons")
        await expect(customer.get_by_role("cell", name="사용 가능")).to_be_visible()

        # One more keyboard, kept this time.
        await go(customer, f"{base}/shop/#/", "#/")
        await customer.get_by_role("link", name="무선 키보드").first.click()
        await expect(customer.locator("#stock")).to_contain_text("재고 10개")
        await customer.get_by_role("button", name="장바구니에 담기").click()
        await go(customer, f"{base}/shop/#/cart", "#/cart")
        await customer.get_by_role("button", name="결제하기").click()
        await expect(customer.get_by_role("status")).to_contain_text("₩30,000")
        await go(customer, f"{base}/shop/#/", "#/")
        await expect(customer.locator(".top5")).to_contain_text("무선 키보드")

        # The admin sees the orders, the live coupon count and the sales chart; in English too.
        await go(admin, f"{base}/shop/#/admin/orders", "#/admin/orders")
        await expect(admin.get_by_role("cell", name="취소됨")).to_be_visible()
        await expect(admin.get_by_role("cell", name="buyer1").first).to_be_visible()  # by name
        await expect(admin.get_by_label("상태").locator("option")).to_have_count(8)  # all, 7
        await shot(admin, "admin-orders")
        await go(admin, f"{base}/shop/#/admin/coupons", "#/admin/coupons")
        await expect(admin.get_by_role("row", name=re.compile("WELCOME10"))).to_contain_text("99")
        await shot(admin, "admin-coupons")
        await go(admin, f"{base}/shop/#/admin", "#/admin")
        await expect(admin.get_by_role("img", name="일별 결제 금액 (최근 7일, 쇼핑몰 시간대)")
                     ).to_be_visible()
        await expect(admin.get_by_text("결제 주문 1건")).to_be_visible()  # the cancelled one not
        await go(admin, f"{base}/shop/#/admin/events", "#/admin/events")
        await expect(admin.locator("#delivery")).to_contain_text("DATA_PLATFORM_URL")
        # The consumers with their lag; one dead e-mail event, retried by the admin.
        await dead_email_event(clean_db)
        await go(admin, f"{base}/shop/#/admin/consumers", "#/admin/consumers")
        await expect(admin.locator("tr[data-consumer=email]")).to_contain_text("설정 안 됨")
        dead = admin.locator("tr[data-dead]")
        await expect(dead).to_contain_text("550 mailbox unavailable")
        await shot(admin, "admin-consumers")
        await dead.get_by_role("button", name="재시도").click()
        await expect(admin.get_by_text("보류된 이벤트가 없습니다.")).to_be_visible()
        await go(admin, f"{base}/shop/#/admin", "#/admin")
        await shot(admin, "admin-dashboard")
        await admin.get_by_role("button", name="English").click()
        # In English the shop's link and the admin menu's are both "Products": look in the
        # main navigation (the admin menu also matches once the dashboard re-renders).
        await expect(admin.get_by_role("navigation", name="main")
                     .get_by_role("link", name="Products")).to_be_visible()
        await expect(admin.get_by_role("navigation", name="admin")
                     .get_by_role("link", name="Products")).to_be_visible()
        await go(admin, f"{base}/shop/#/", "#/")
        await shot(admin, "storefront-en")


def cart_link(page: Page, items: int):  # noqa: ANN201
    return page.get_by_role("link", name=f"장바구니 ({items})")


async def dead_email_event(database_url: str) -> None:
    """The newest order event, dead for the e-mail consumer (its server refused it)."""
    from sqlalchemy import insert, select

    from ecommerce.consumers.models import consumer_deliveries
    from ecommerce.events.models import outbox
    from ecommerce.platform.clock import Clock
    from ecommerce.platform.database import Database

    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            event = (await uow.conn.execute(select(outbox.c.id, outbox.c.event_id)
                                            .order_by(outbox.c.id.desc()).limit(1))).one()
            await uow.conn.execute(insert(consumer_deliveries).values(
                consumer="email", outbox_id=event.id, event_id=event.event_id, status="DEAD",
                attempts=10, last_error="SMTP: 550 mailbox unavailable",
                created_at=Clock().now()))
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_paying_by_card_in_the_browser(clean_db, browser):
    """Balance plus card through the sandbox's checkout page, approved; a declined card:
    the customer sees why (in words, not the gateway's code), the holds are given back and
    the cart is kept; a checkout given up at the gateway, then the unpaid order cancelled
    at once; a top-up by card (the only top-up with a gateway); the English view."""
    from tests.e2e.conftest import ShopContext
    from tests.e2e.test_card_storm import gateway_env
    from tests.factories import make_product, make_user
    from tests.payments.checkout import DECLINE, dev_pg

    seed = ShopContext(clean_db)
    try:
        await make_user(seed, balance=10_000, username="cardbuyer", password="card-password")
        await make_product(seed, price=25_000, stock=3, name="기계식 키보드")
        # A product of the demo catalog, which the English view names in English.
        await make_product(seed, price=189_000, stock=5, name="무선 이어폰 프로",
                           category="electronics")
    finally:
        await seed.ctx.close()
    with dev_pg() as sandbox:
        async with live_server(clean_db, workers=1, **gateway_env(sandbox)) as server:
            base = server.url
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900},
                                                    locale="ko-KR")).new_page()
            await log_in(page, base, "cardbuyer", "card-password")

            async def buy_one(method: str) -> None:
                await go(page, f"{base}/shop/#/", "#/")
                await page.get_by_role("link", name="기계식 키보드").first.click()
                await page.get_by_role("button", name="장바구니에 담기").click()
                await expect(page.get_by_role("status")).to_contain_text("장바구니에 담았습니다")
                await go(page, f"{base}/shop/#/cart", "#/cart")
                await page.get_by_label("결제 수단").select_option(method)

            # Balance + card: 10,000 from the balance, 15,000 by card.
            await buy_one("MIXED")
            await page.get_by_label("잔액에서 결제").fill("10000")
            await page.get_by_label("잔액에서 결제").dispatch_event("change")
            await expect(page.locator("#quote-card")).to_have_text("₩15,000")
            await shot(page, "card-cart")
            await page.get_by_role("button", name="결제하기").click()
            await expect(page.get_by_text("15,000원")).to_be_visible()  # the gateway's page
            assert page.url.startswith(f"{sandbox}/checkout")
            await shot(page, "card-checkout")
            await page.get_by_role("button", name="결제하기 / Pay").click()
            await expect(page.locator("#pay-result")).to_contain_text("결제가 완료되었습니다")
            await expect(page.locator("#pay-result")).to_contain_text("₩15,000")
            await expect(cart_link(page, 0)).to_be_visible()  # paid: the cart is the order
            await shot(page, "card-paid")
            await go(page, f"{base}/shop/#/wallet", "#/wallet")
            await expect(page.locator("#balance")).to_contain_text("₩0")

            # By card only, with the card that is declined: why, in words; the cart kept.
            await buy_one("CARD")
            await page.get_by_role("button", name="결제하기").click()
            await page.get_by_label("카드 번호 / card number").fill(DECLINE)
            await page.get_by_role("button", name="결제하기 / Pay").click()
            await expect(page.get_by_role("alert")).to_contain_text(
                "카드 결제가 거절되었습니다: 한도초과")
            await expect(page.get_by_role("alert")).not_to_contain_text("REJECT_CARD_PAYMENT")
            await expect(cart_link(page, 1)).to_be_visible()  # declined: the cart is kept
            await go(page, f"{base}/shop/#/orders", "#/orders")
            await expect(page.get_by_role("cell", name="결제 완료")).to_be_visible()
            await expect(page.get_by_role("cell", name="결제 실패")).to_be_visible()
            await go(page, f"{base}/shop/#/product/1", "#/product/1")
            await expect(page.locator("#stock")).to_contain_text("재고 2개")  # given back

            # The kept cart, by card again; the customer gives up at the gateway's page and
            # cancels the unpaid order from the list: its hold is back at once.
            await go(page, f"{base}/shop/#/cart", "#/cart")
            await page.get_by_label("결제 수단").select_option("CARD")
            await page.get_by_role("button", name="결제하기").click()
            await page.get_by_role("button", name="취소 / Cancel").click()
            await expect(page.locator("#pay-result")).to_contain_text("결제하지 않았습니다")
            await go(page, f"{base}/shop/#/product/1", "#/product/1")
            await expect(page.locator("#stock")).to_contain_text("재고 1개")  # held
            await go(page, f"{base}/shop/#/orders", "#/orders")
            pending = page.get_by_role("row", name=re.compile("결제 대기"))
            await expect(pending.get_by_role("button", name="결제하기")).to_be_visible()
            questions: list[str] = []

            async def accept(dialog) -> None:  # noqa: ANN001
                questions.append(dialog.message)
                await dialog.accept()

            page.once("dialog", accept)
            await pending.get_by_role("button", name="주문 취소").click()
            await expect(page.get_by_role("status")).to_contain_text("주문이 취소되었습니다")
            assert "결제 전 주문" in questions[0] and "청구되지 않습니다" in questions[0]
            await go(page, f"{base}/shop/#/product/1", "#/product/1")
            await expect(page.locator("#stock")).to_contain_text("재고 2개")
            # Cancelling the order paid by balance and card says where each part goes.
            await go(page, f"{base}/shop/#/orders", "#/orders")
            paid = page.get_by_role("row", name=re.compile("결제 완료"))
            page.once("dialog", accept)
            await paid.get_by_role("button", name="주문 취소").click()
            # Wait for this cancel's own answer (another order already reads 취소됨): the
            # list it redraws must be drawn before the next page, or it redraws that page.
            await expect(page.get_by_role("status")).to_contain_text("주문이 취소되었습니다: #1")
            await expect(page.get_by_role("row", name=re.compile("결제 완료"))).to_have_count(0)
            assert ("잔액으로 결제한 ₩10,000은 잔액으로, 카드로 결제한 ₩15,000은 카드로 "
                    "환불됩니다") in questions[1], questions[1]

            # With a gateway, the balance is topped up by card only.
            await go(page, f"{base}/shop/#/wallet", "#/wallet")
            await expect(page.locator("#topup-direct")).to_have_count(0)
            await expect(page.locator("#balance")).to_contain_text("₩10,000")  # the refund
            await page.locator("#topup-card").get_by_label("금액").fill("20000")
            await expect(page.locator("#topup-card").get_by_label("금액")).to_have_value("20000")
            await page.get_by_role("button", name="카드로 충전").click()
            await expect(page.get_by_text("20,000원")).to_be_visible()  # the gateway's page
            await page.get_by_role("button", name="결제하기 / Pay").click()
            await expect(page.locator("#topup-result")).to_contain_text(
                "충전되었습니다: 잔액 ₩30,000")  # the refund's 10,000 and the top-up's 20,000
            await shot(page, "card-topup")

            # The English view: the demo catalog's names in English, one language a page.
            await page.get_by_role("button", name="English").click()
            await go(page, f"{base}/shop/#/", "#/")
            await expect(page.get_by_role("link", name="Wireless earbuds Pro")).to_be_visible()
            await expect(page.locator("main")).not_to_contain_text("무선 이어폰")
            await page.get_by_role("button", name="한국어").click()
