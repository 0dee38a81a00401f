// The storefront and the admin console: one page, plain modules, the JSON API only.
// Korean by default, English on the toggle; money is whole won, shown as the locale does.

const TEXT = {
  ko: {
    brand: "쇼핑몰", lang: "English", found: "상품 {n}개", top10: "최근 7일 인기 상품 TOP 10", soldColumn: "판매 수량", shop: "상품", cart: "장바구니", wallet: "잔액", coupons: "쿠폰",
    orders: "주문 내역", login: "로그인", logout: "로그아웃", signup: "회원가입", admin: "관리자",
    username: "아이디", password: "비밀번호", top5: "최근 3일 인기 상품 TOP 5", categories: "카테고리",
    all: "전체", search: "검색어", minPrice: "최저 가격", maxPrice: "최고 가격", inStock: "재고 있는 상품만",
    sort: "정렬", "sort.newest": "최신순", "sort.price_asc": "낮은 가격순", "sort.price_desc": "높은 가격순",
    "sort.name": "이름순", "sort.popular": "인기순", apply: "적용", stock: "재고", soldOut: "품절",
    inStockN: "재고 {n}개", sold: "판매 {n}개", quantity: "수량", addToCart: "장바구니에 담기",
    added: "장바구니에 담았습니다", prev: "이전", next: "다음", page: "{p} / {n} 페이지", total: "합계",
    subtotal: "상품 금액", discount: "할인", pay: "결제 금액", coupon: "쿠폰", noCoupon: "사용 안 함",
    checkout: "결제하기", emptyCart: "장바구니가 비어 있습니다.", remove: "삭제", balance: "현재 잔액",
    amount: "금액", topUp: "충전하기", toppedUp: "충전되었습니다", history: "이용 내역", type: "구분",
    "type.RECHARGE": "충전", "type.PAYMENT": "결제", "type.REFUND": "환불", after: "잔액", date: "일시",
    order: "주문", claimTitle: "쿠폰 받기", code: "쿠폰 코드", lookUp: "조회", claim: "쿠폰 받기",
    claimed: "쿠폰을 받았습니다", remaining: "남은 수량 {n} / {t}", myCoupons: "보유 쿠폰",
    "status.AVAILABLE": "사용 가능", "status.USED": "사용함", "status.EXPIRED": "만료",
    "status.PAID": "결제 완료", "status.CANCELLED": "취소됨", "status.PENDING": "대기",
    "status.DELIVERED": "전달됨", "status.FAILED": "실패", status: "상태", expires: "만료",
    minOrder: "최소 주문 {n}", cancel: "주문 취소", cancelled: "주문이 취소되었습니다", placed: "주문이 완료되었습니다",
    items: "상품", noOrders: "주문 내역이 없습니다.", loginFirst: "먼저 로그인하세요.", welcome: "환영합니다, {u}님",
    signedUp: "가입되었습니다. 로그인하세요.", dashboard: "매출 현황", products: "상품 관리",
    adminCategories: "카테고리 관리", adminCoupons: "쿠폰 관리", adminOrders: "주문 관리", events: "이벤트",
    name: "이름", description: "설명", price: "가격", category: "카테고리", slug: "슬러그", create: "등록",
    created: "등록되었습니다", save: "저장", saved: "저장되었습니다", active: "판매 중", delta: "재고 증감",
    adjust: "반영", discountType: "할인 방식", "discount.FIXED": "정액", "discount.PERCENT": "정률",
    discountValue: "할인 값", maxDiscount: "최대 할인", minOrderAmount: "최소 주문 금액", totalQuantity: "발행 수량",
    validDays: "유효 기간(일)", issued: "발급", left: "남은 수량", user: "회원", filter: "필터", retry: "재시도",
    retried: "다시 보냅니다", attempts: "시도", event: "이벤트", revenue: "일별 결제 금액 (최근 7일, 쇼핑몰 시간대)",
    paidOrders: "결제 주문 {n}건", noData: "데이터가 없습니다.", live: "실시간",
    payWith: "결제 수단", "method.BALANCE": "잔액", "method.CARD": "카드", "method.MIXED": "잔액 + 카드",
    balancePart: "잔액에서 결제", cardPart: "카드 결제", payByCard: "카드 결제", payNow: "결제하기",
    paidOk: "결제가 완료되었습니다", payUnknown: "결제 결과를 확인하고 있습니다. 잠시 후 주문 내역에서 확인하세요.",
    declined: "카드 결제가 거절되었습니다: {m}", payCancelled: "결제하지 않았습니다: {m}", payResult: "결제 결과",
    toOrders: "주문 내역 보기", nothingToConfirm: "확인할 결제가 없습니다.",
    "status.PAYMENT_PENDING": "결제 대기", "status.PAYMENT_UNKNOWN": "결제 확인 중", "status.PAYMENT_FAILED": "결제 실패",
    "status.CANCEL_PENDING": "환불 중", held: "보유 중", upTo: "최대 {n}",
    "payment.READY": "결제 대기", "payment.CONFIRMING": "승인 확인 중", "payment.DONE": "승인됨", "payment.FAILED": "실패",
    "payment.EXPIRED": "기한 만료", "payment.VOIDED": "결제 전 취소", "payment.CANCEL_PENDING": "환불 중", "payment.CANCELLED": "환불됨",
    topUpByCard: "카드로 충전", topUpDirect: "바로 충전 (데모)", demoTopUp: "데모: 결제 없이 잔액이 충전됩니다. 카드 결제 게이트웨이를 설정하면 카드로만 충전할 수 있습니다.",
    topUpPaid: "충전되었습니다: 잔액 {n}", topUpResult: "충전 결과", noCard: "카드 결제를 사용할 수 없습니다: 이 쇼핑몰에 결제 게이트웨이(PAYMENT_GATEWAY_URL)가 설정되지 않았습니다.",
    cancelUnpaid: "결제 전 주문 #{id}을(를) 취소할까요? 잡아 둔 재고와 쿠폰{b}이 바로 돌아갑니다. 카드는 청구되지 않습니다.",
    balanceBack: ", 잔액 사용분 {n}",
    confirmCancelCard: "주문 #{id}을(를) 취소할까요? {parts}",
    cancelParts: "잔액으로 결제한 {b}은 잔액으로, 카드로 결제한 {c}은 카드로 환불됩니다.",
    cancelCardOnly: "카드로 결제한 {c}은 카드로 환불됩니다.",
    declinedPlain: "카드 결제가 거절되었습니다: {m}", cartKept: "장바구니는 결제가 끝날 때까지 그대로 둡니다.",
    consumers: "이벤트 소비자", lag: "밀린 이벤트", inProgress: "처리 중", dead: "실패(보류)", configured: "실행",
    notConfigured: "설정 안 됨", deadEvents: "보류된 이벤트: {c}", lastError: "마지막 오류", noDead: "보류된 이벤트가 없습니다.",
    "err.PAYMENT_DECLINED": "카드 결제가 거절되었습니다", "err.PAYMENT_METHOD_UNAVAILABLE": "카드 결제를 사용할 수 없습니다",
    "err.ORDER_NOT_PAYABLE": "결제할 수 없는 주문입니다 (만료 또는 처리됨)", "err.PAYMENT_AMOUNT_MISMATCH": "결제 금액이 맞지 않습니다",
    "err.OUT_OF_STOCK": "재고가 부족합니다", "err.INSUFFICIENT_BALANCE": "잔액이 부족합니다",
    "err.COUPON_NOT_USABLE": "이 쿠폰은 사용할 수 없습니다", "err.COUPON_SOLD_OUT": "쿠폰이 모두 소진되었습니다",
    "err.COUPON_ALREADY_CLAIMED": "이미 받은 쿠폰입니다", "err.COUPON_NOT_FOUND": "없는 쿠폰입니다",
    "err.COUPON_NOT_ACTIVE": "지금은 받을 수 없는 쿠폰입니다", "err.INVALID_CREDENTIALS": "아이디 또는 비밀번호가 맞지 않습니다",
    "err.USERNAME_TAKEN": "이미 사용 중인 아이디입니다", "err.BALANCE_LIMIT_EXCEEDED": "잔액 한도(1억 원)를 넘습니다",
    "err.RATE_LIMITED": "요청이 너무 많습니다. 잠시 후 다시 시도하세요", "err.INVALID_REQUEST": "입력을 확인하세요",
    "err.ORDER_NOT_CANCELLABLE": "취소할 수 없는 주문입니다", "err.UNAUTHORIZED": "다시 로그인하세요",
    "err.NETWORK": "서버에 연결할 수 없습니다", "err.PRODUCT_NOT_FOUND": "없는 상품입니다",
    "err.USER_NOT_FOUND": "없는 회원입니다", "err.ORDER_NOT_FOUND": "없는 주문입니다", "err.FORBIDDEN": "권한이 없습니다",
    "err.STOCK_LIMIT_EXCEEDED": "재고는 10억 개를 넘을 수 없습니다", "err.PAYLOAD_TOO_LARGE": "입력이 너무 큽니다",
    "err.SERVER_BUSY": "서버가 바쁩니다. 잠시 후 다시 시도하세요", "err.SERVICE_UNAVAILABLE": "잠시 서비스를 이용할 수 없습니다. 다시 시도하세요",
    "err.CATEGORY_EXISTS": "이미 있는 카테고리입니다", "err.CATEGORY_NOT_FOUND": "없는 카테고리입니다",
    "err.COUPON_CODE_TAKEN": "이미 있는 쿠폰 코드입니다", "err.EVENT_NOT_RETRYABLE": "재시도할 수 없는 이벤트입니다",
    "err.IDEMPOTENCY_KEY_REUSED": "같은 요청 키가 다른 요청에 쓰였습니다", "err.IDEMPOTENCY_KEY_IN_PROGRESS": "같은 요청을 처리 중입니다",
    "err.STOCK_ON_HOLD": "남은 재고가 결제 대기 중인 주문에 잡혀 있습니다. 잠시 후 다시 시도하거나 잔액으로 결제하세요",
    "err.TOO_MANY_UNPAID_ORDERS": "결제 대기 중인 카드 주문이 너무 많습니다. 먼저 결제하거나 취소하세요",
    "err.UNPAID_ORDER_TOO_LARGE": "카드 결제 주문은 결제 전까지 잡아 둘 수 있는 수량에 한도가 있습니다. 수량을 줄이거나 잔액으로 결제하세요",
    "err.CARD_TOPUP_REQUIRED": "잔액은 카드로 충전하세요", "err.CHARGE_NOT_FOUND": "없는 충전 요청입니다",
    "err.other": "요청을 처리하지 못했습니다 ({code})", outOfStockOf: "재고가 부족합니다: {name} (남은 재고 {n}개)",
    confirmCancel: "주문 #{id}을(를) 취소할까요? 결제 금액은 잔액으로 환불됩니다.", availableCoupons: "지금 받을 수 있는 쿠폰",
    noCoupons: "지금 받을 수 있는 쿠폰이 없습니다.", orLookUp: "쿠폰 코드로 찾기", quoteTitle: "결제 예상",
    afterPay: "결제 후 잔액", short: "잔액이 {n} 부족합니다", loginToQuote: "로그인하면 할인과 결제 금액을 미리 볼 수 있습니다.",
    noPlatform: "데이터 플랫폼(DATA_PLATFORM_URL)이 설정되지 않아, 이벤트는 보낼 곳이 없어 대기 상태로 남습니다.",
    noRelay: "이 서버는 소비자를 실행하지 않습니다 (RUN_CONSUMERS=false): 따로 실행한 `ecommerce consume`이 전달합니다.",
  },
  en: {
    brand: "Shop", lang: "한국어", found: "{n} products", top10: "Top 10 sellers of the last 7 days", soldColumn: "Sold", shop: "Products", cart: "Cart", wallet: "Balance", coupons: "Coupons",
    orders: "Orders", login: "Log in", logout: "Log out", signup: "Sign up", admin: "Admin",
    username: "Username", password: "Password", top5: "Top 5 sellers of the last 3 days",
    categories: "Categories", all: "All", search: "Search", minPrice: "Min price", maxPrice: "Max price",
    inStock: "In stock only", sort: "Sort", "sort.newest": "Newest", "sort.price_asc": "Price: low to high",
    "sort.price_desc": "Price: high to low", "sort.name": "Name", "sort.popular": "Popular", apply: "Apply",
    stock: "Stock", soldOut: "Sold out", inStockN: "{n} in stock", sold: "{n} sold", quantity: "Quantity",
    addToCart: "Add to cart", added: "Added to the cart", prev: "Previous", next: "Next",
    page: "Page {p} of {n}", total: "Total", subtotal: "Subtotal", discount: "Discount", pay: "To pay",
    coupon: "Coupon", noCoupon: "No coupon", checkout: "Place order", emptyCart: "Your cart is empty.",
    remove: "Remove", balance: "Balance", amount: "Amount", topUp: "Top up", toppedUp: "Topped up",
    history: "History", type: "Type", "type.RECHARGE": "Top-up", "type.PAYMENT": "Payment",
    "type.REFUND": "Refund", after: "Balance after", date: "Date", order: "Order", claimTitle: "Claim a coupon",
    code: "Coupon code", lookUp: "Look up", claim: "Claim", claimed: "Coupon claimed",
    remaining: "{n} of {t} left", myCoupons: "My coupons", "status.AVAILABLE": "Available",
    "status.USED": "Used", "status.EXPIRED": "Expired", "status.PAID": "Paid", "status.CANCELLED": "Cancelled",
    "status.PENDING": "Pending", "status.DELIVERED": "Delivered", "status.FAILED": "Failed", status: "Status",
    expires: "Expires", minOrder: "Minimum order {n}", cancel: "Cancel order", cancelled: "Order cancelled",
    placed: "Order placed", items: "Items", noOrders: "No orders yet.", loginFirst: "Please log in first.",
    welcome: "Welcome, {u}", signedUp: "Account created. Please log in.", dashboard: "Sales",
    products: "Products", adminCategories: "Categories", adminCoupons: "Coupons", adminOrders: "Orders",
    events: "Events", name: "Name", description: "Description", price: "Price", category: "Category",
    slug: "Slug", create: "Create", created: "Created", save: "Save", saved: "Saved", active: "On sale",
    delta: "Stock change", adjust: "Apply", discountType: "Discount type", "discount.FIXED": "Fixed",
    "discount.PERCENT": "Percent", discountValue: "Value", maxDiscount: "Max discount",
    minOrderAmount: "Minimum order", totalQuantity: "Quantity", validDays: "Valid days", issued: "Issued",
    left: "Left",
    user: "User", filter: "Filter", retry: "Retry", retried: "Queued for delivery", attempts: "Attempts",
    consumers: "Consumers", lag: "Lag", inProgress: "In progress", dead: "Dead", configured: "Runs",
    notConfigured: "not configured", deadEvents: "Dead events: {c}", lastError: "Last error", noDead: "No dead events.",
    event: "Event", revenue: "Paid per day (last 7 days, shop time zone)", paidOrders: "{n} paid orders", noData: "No data.",
    live: "live", "err.OUT_OF_STOCK": "Out of stock", "err.INSUFFICIENT_BALANCE": "Your balance is too low",
    payWith: "Pay with", "method.BALANCE": "Balance", "method.CARD": "Card", "method.MIXED": "Balance + card",
    balancePart: "From the balance", cardPart: "By card", payByCard: "Card payment", payNow: "Pay",
    paidOk: "Payment complete", payUnknown: "We are checking the payment's result; see your orders shortly.",
    declined: "The card payment was declined: {m}", payCancelled: "Not paid: {m}", payResult: "Payment",
    toOrders: "See your orders", nothingToConfirm: "There is no payment to confirm.",
    "status.PAYMENT_PENDING": "Awaiting payment", "status.PAYMENT_UNKNOWN": "Checking payment", "status.PAYMENT_FAILED": "Payment failed",
    "status.CANCEL_PENDING": "Refunding", held: "Held", upTo: "up to {n}",
    "payment.READY": "Awaiting payment", "payment.CONFIRMING": "Being confirmed", "payment.DONE": "Approved", "payment.FAILED": "Failed",
    "payment.EXPIRED": "Expired", "payment.VOIDED": "Cancelled before payment", "payment.CANCEL_PENDING": "Refunding", "payment.CANCELLED": "Refunded",
    topUpByCard: "Top up by card", topUpDirect: "Top up now (demo)", demoTopUp: "Demo: the balance is credited without a payment. With a card gateway configured, top-ups go by card only.",
    topUpPaid: "Topped up: balance {n}", topUpResult: "Top-up", noCard: "Card payment is not available: this shop has no payment gateway configured (PAYMENT_GATEWAY_URL).",
    cancelUnpaid: "Cancel order #{id} before paying? The stock and coupon held{b} come back at once. The card is not charged.",
    balanceBack: " and the {n} taken from the balance",
    confirmCancelCard: "Cancel order #{id}? {parts}",
    cancelParts: "The {b} paid from the balance goes back to the balance, the {c} paid by card back to the card.",
    cancelCardOnly: "The {c} paid by card goes back to the card.",
    declinedPlain: "The card payment was declined by the card company.", cartKept: "Your cart stays until the order is paid.",
    "err.STOCK_ON_HOLD": "What is left is held by orders awaiting payment; try again shortly or pay from the balance",
    "err.TOO_MANY_UNPAID_ORDERS": "Too many card orders await payment: pay or cancel one first",
    "err.UNPAID_ORDER_TOO_LARGE": "Too many items for one order paid by card; order fewer or pay from the balance",
    "err.CARD_TOPUP_REQUIRED": "Top up by card", "err.CHARGE_NOT_FOUND": "No such top-up",
    "err.PAYMENT_DECLINED": "The card payment was declined", "err.PAYMENT_METHOD_UNAVAILABLE": "Card payment is not available",
    "err.ORDER_NOT_PAYABLE": "This order can no longer be paid", "err.PAYMENT_AMOUNT_MISMATCH": "The amount does not match",
    "err.COUPON_NOT_USABLE": "This coupon cannot be used", "err.COUPON_SOLD_OUT": "This coupon is sold out",
    "err.COUPON_ALREADY_CLAIMED": "You already hold this coupon", "err.COUPON_NOT_FOUND": "No such coupon",
    "err.COUPON_NOT_ACTIVE": "This coupon cannot be claimed now",
    "err.INVALID_CREDENTIALS": "Wrong username or password", "err.USERNAME_TAKEN": "That username is taken",
    "err.BALANCE_LIMIT_EXCEEDED": "That would pass the balance limit of 100,000,000 won",
    "err.RATE_LIMITED": "Too many requests; try again shortly", "err.INVALID_REQUEST": "Please check the form",
    "err.ORDER_NOT_CANCELLABLE": "This order cannot be cancelled", "err.UNAUTHORIZED": "Please log in again",
    "err.NETWORK": "The server cannot be reached", "err.other": "The request failed ({code})",
    outOfStockOf: "Not enough stock: {name} ({n} left)",
    confirmCancel: "Cancel order #{id}? The amount paid goes back to the balance.", availableCoupons: "Coupons you can claim now",
    noCoupons: "No coupons can be claimed right now.", orLookUp: "Find a coupon by code", quoteTitle: "What you will pay",
    afterPay: "Balance after paying", short: "Your balance is {n} short", loginToQuote: "Log in to see the discount and the amount to pay.",
    noPlatform: "No data platform is configured (DATA_PLATFORM_URL): events have nowhere to go and stay pending.",
    noRelay: "This server runs no consumers (RUN_CONSUMERS=false): an `ecommerce consume` started apart delivers them.",
  },
};

let lang = localStorage.getItem("lang") || "ko";
let session = JSON.parse(localStorage.getItem("session") || "null");
let refresh = null; // a page's timer for live numbers
let chosenCoupon = ""; // the cart's coupon choice, kept while quantities change
let chosenMethod = "BALANCE"; // and how it is paid: BALANCE, CARD or MIXED (balance + card)
let chosenBalancePart = 0;

function t(key, vars = {}) {
  const text = TEXT[lang][key] ?? TEXT.ko[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => vars[name]);
}
const won = (n) => new Intl.NumberFormat(lang === "ko" ? "ko-KR" : "en-US",
  { style: "currency", currency: "KRW" }).format(n);
const num = (n) => new Intl.NumberFormat(lang === "ko" ? "ko-KR" : "en-US").format(n);

// What this shop offers (card payments, a direct top-up), and the demo catalog's names in
// English (/shop/names.json): the English view shows them; a shop's own names stay as they are.
let options = { cardPayments: false, directTopUp: true, checkoutUrl: null };
let names = null;
async function loadShop() {
  const [opts, demo] = await Promise.all([
    fetch("/api/payment-options").then((r) => r.json()).catch(() => null),
    fetch("/shop/names.json").then((r) => r.json()).catch(() => null)]);
  if (opts) options = opts;
  names = demo;
}
const named = (kind, text) => (lang === "en" && names?.[kind]?.[text]) || text;
const KNOWN_IMAGES = new Set(["electronics", "fashion", "food", "home", "beauty", "books", "sports"]);
const image = (category, cls = "thumb") => h("img", { src: `img/${KNOWN_IMAGES.has(category) ? category : "product"}.svg`,
  alt: "", class: cls, width: 120, height: 120 });
const when = (iso) => iso ? new Date(iso).toLocaleString(lang === "ko" ? "ko-KR" : "en-US") : "–";

// DOM: h("tag", {attrs}, children...) builds nodes; text is never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const field = (label, input) => h("label", {}, label, input);
const input = (name, attrs = {}) => h("input", { name, id: `f-${name}`, ...attrs });
function select(name, options, value) {
  return h("select", { name, id: `f-${name}` }, options.map(([v, label]) =>
    h("option", { value: v, selected: String(v) === String(value) }, label)));
}
function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// API ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function api(method, path, body, { key } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "NETWORK", t("err.NETWORK"));
  }
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    if (response.status === 401 && session) setSession(null);
    throw new ApiError(response.status, data?.code || "ERROR", data?.message || response.statusText);
  }
  return { data, total: Number(response.headers.get("X-Total-Count") || 0) };
}
const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random()));

// Messages ----------------------------------------------------------------------------
function flash(kind, text) {
  const box = document.getElementById("flash");
  box.replaceChildren(h("div", { class: `msg ${kind}`, role: kind === "error" ? "alert" : null }, text));
}
function describe(error) {
  // The server's messages are English: in English show them (they name the field or the
  // product); in Korean show our own words, with the product's name for a stock shortage.
  if (lang === "en") return error.message;
  const stock = error.code === "OUT_OF_STOCK" && /'(.+)' \(product \d+\): (\d+) left/.exec(error.message);
  if (stock) return t("outOfStockOf", { name: stock[1], n: stock[2] });
  return TEXT.ko[`err.${error.code}`] || t("err.other", { code: error.code });
}
function fail(error) {
  flash("error", describe(error));
}
const clearFlash = () => document.getElementById("flash").replaceChildren();
let pending = null; // a message for the page being navigated to
function navigate(hash, kind, text) {
  if (location.hash === hash) { flash(kind, text); route(); return; }
  pending = [kind, text];
  location.hash = hash;
}

// Session and cart --------------------------------------------------------------------
function setSession(value) {
  session = value;
  if (value) localStorage.setItem("session", JSON.stringify(value));
  else localStorage.removeItem("session");
  renderNav();
}
const cart = {
  read: () => JSON.parse(localStorage.getItem("cart") || "{}"),
  write: (value) => localStorage.setItem("cart", JSON.stringify(value)),
  add(product, quantity) {
    const items = this.read();
    const line = items[product.id] || { id: product.id, name: product.name, quantity: 0 };
    line.quantity = Math.min(1000, line.quantity + quantity);
    items[product.id] = line;
    this.write(items);
  },
};

// Layout ------------------------------------------------------------------------------
function renderNav() {
  const nav = document.getElementById("nav");
  const current = location.hash.split("?")[0] || "#/";
  const link = (href, label) => h("a", { href, "aria-current": current === href ? "page" : null }, label);
  const links = [link("#/", t("shop")), link("#/cart", `${t("cart")} (${Object.keys(cart.read()).length})`)];
  if (session) {
    links.push(link("#/wallet", t("wallet")), link("#/coupons", t("coupons")), link("#/orders", t("orders")));
    if (session.role === "ADMIN") links.push(link("#/admin", t("admin")));
    links.push(h("button", { type: "button", class: "link", onclick: () => { setSession(null); location.hash = "#/"; } },
      `${t("logout")} (${session.username})`));
  } else {
    links.push(link("#/login", t("login")), link("#/signup", t("signup")));
  }
  nav.replaceChildren(...links);
  document.getElementById("lang").textContent = t("lang");
  document.querySelector(".brand").textContent = t("brand");
  document.documentElement.lang = lang;
}
function page(title, ...content) {
  document.title = `${title} · ${t("brand")}`;
  document.getElementById("main").replaceChildren(h("h1", {}, title),
    ...content.filter((part) => part != null && part !== false));
}
function needLogin() {
  if (session) return false;
  navigate("#/login", "error", t("loginFirst"));
  return true;
}
function pager(current, total, size, go) {
  if (total <= size && current <= 1) return null; // one page or none: nothing to page
  const pages = Math.max(1, Math.ceil(total / size));
  return h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { type: "button", class: "secondary", disabled: current <= 1, onclick: () => go(current - 1) }, t("prev")),
    h("span", {}, t("page", { p: current, n: pages })),
    h("button", { type: "button", class: "secondary", disabled: current >= pages, onclick: () => go(current + 1) }, t("next")));
}
function table(headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
    h("tbody", {}, rows)));
}
function chooseQuery() {
  return new URLSearchParams(location.hash.split("?")[1] || "");
}

// Storefront --------------------------------------------------------------------------
async function shopPage() {
  const q = chooseQuery();
  const [{ data: categories }, { data: top }] = await Promise.all([
    api("GET", "/api/categories?size=100"), api("GET", "/api/products/top?days=3&limit=5")]);
  const params = new URLSearchParams({ page: q.get("page") || "1", size: "12", sort: q.get("sort") || "newest" });
  for (const name of ["category", "keyword", "minPrice", "maxPrice", "inStock"]) if (q.get(name)) params.set(name, q.get(name));
  const { data: products, total } = await api("GET", `/api/products?${params}`);

  const filters = h("form", { class: "row", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const values = formValues(event.target);
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v) next.set(k, v);
    location.hash = `#/?${next}`;
  } },
  field(t("search"), input("keyword", { type: "search", value: q.get("keyword") || "", maxlength: 100 })),
  field(t("category"), select("category", [["", t("all")], ...categories.map((c) => [c.slug, `${named("categories", c.name)} (${num(c.productCount)})`])], q.get("category") || "")),
  field(t("minPrice"), input("minPrice", { type: "number", min: 0, value: q.get("minPrice") || "" })),
  field(t("maxPrice"), input("maxPrice", { type: "number", min: 0, value: q.get("maxPrice") || "" })),
  field(t("sort"), select("sort", ["newest", "price_asc", "price_desc", "name", "popular"].map((s) => [s, t(`sort.${s}`)]), params.get("sort"))),
  h("label", { class: "check" }, h("input", { type: "checkbox", name: "inStock", value: "true", checked: q.get("inStock") === "true" }), t("inStock")),
  h("button", { type: "submit" }, t("apply")));

  const topList = (rows) => rows.length ? h("ol", {}, rows.map((p) => h("li", {}, h("a", { href: `#/product/${p.productId}` }, named("products", p.name)), " · ",
    won(p.price), " · ", h("span", { class: "muted" }, t("sold", { n: num(p.soldQuantity) }))))) : h("p", { class: "muted" }, t("noData"));
  const topBody = h("div", {}, topList(top));
  const topBox = h("section", { class: "card top5", "aria-labelledby": "top5" }, h("h2", { id: "top5" }, t("top5")), topBody);
  refresh = setInterval(async () => { // the top sellers are live
    const { data } = await api("GET", "/api/products/top?days=3&limit=5");
    topBody.replaceChildren(topList(data));
  }, 2000);

  const grid = h("div", { class: "grid" }, products.map((p) => h("article", { class: "card" },
    h("a", { href: `#/product/${p.id}`, tabindex: -1, "aria-hidden": "true" }, image(p.category)),
    h("h3", {}, h("a", { href: `#/product/${p.id}` }, named("products", p.name))),
    h("div", { class: "price" }, won(p.price)),
    h("div", { class: p.stock > 0 ? "stock-in" : "stock-out" }, p.stock > 0 ? t("inStockN", { n: num(p.stock) }) : t("soldOut")),
    h("div", { class: "muted" }, categoryName(categories, p.category)))));
  const current = Number(params.get("page"));
  page(t("shop"), topBox, filters, h("p", { class: "muted", id: "found" }, t("found", { n: num(total) })), grid,
    pager(current, total, 12, (n) => { params.set("page", n); q.set("page", n); location.hash = `#/?${q}`; }));
}

const categoryName = (categories, slug) => named("categories", categories.find((c) => c.slug === slug)?.name || slug);

async function productPage(id) {
  const [{ data: p }, { data: categories }] = await Promise.all([
    api("GET", `/api/products/${id}`), api("GET", "/api/categories?size=100")]);
  const stockLine = h("p", { id: "stock", class: p.stock > 0 ? "stock-in" : "stock-out" },
    p.stock > 0 ? t("inStockN", { n: num(p.stock) }) : t("soldOut"));
  const form = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    cart.add(p, Number(formValues(event.target).quantity));
    renderNav();
    flash("ok", `${t("added")}: ${named("products", p.name)}`);
  } }, field(t("quantity"), input("quantity", { type: "number", min: 1, max: 1000, value: 1, required: true })),
  h("button", { type: "submit", disabled: p.stock <= 0 }, t("addToCart")));
  page(named("products", p.name), image(p.category, "picture"), h("p", { class: "price" }, won(p.price)), stockLine,
    h("p", {}, named("descriptions", p.description)),
    h("p", { class: "muted" }, `${t("category")}: ${categoryName(categories, p.category)}`), form);
  refresh = setInterval(async () => { // live stock
    const { data } = await api("GET", `/api/products/${id}`);
    stockLine.textContent = data.stock > 0 ? t("inStockN", { n: num(data.stock) }) : t("soldOut");
    stockLine.className = data.stock > 0 ? "stock-in" : "stock-out";
  }, 3000);
}

async function cartPage() {
  const items = Object.values(cart.read());
  if (!items.length) return page(t("cart"), h("p", {}, t("emptyCart")));
  const live = await Promise.all(items.map((line) => api("GET", `/api/products/${line.id}`).then((r) => r.data).catch(() => null)));
  let coupons = [];
  if (session) coupons = (await api("GET", `/api/users/${session.userId}/coupons?status=AVAILABLE&size=100`)).data;
  const subtotal = items.reduce((sum, line, i) => sum + (live[i] ? live[i].price * line.quantity : 0), 0);
  const rows = items.map((line, i) => h("tr", {},
    h("td", {}, live[i] ? h("a", { href: `#/product/${line.id}` }, named("products", live[i].name)) : named("products", line.name)),
    h("td", { class: "num" }, live[i] ? won(live[i].price) : "–"),
    h("td", { class: "num" }, h("input", { type: "number", min: 1, max: 1000, value: line.quantity, "aria-label": `${t("quantity")} ${line.name}`,
      onchange: (event) => { const all = cart.read(); all[line.id].quantity = Math.max(1, Number(event.target.value)); cart.write(all); clearFlash(); route(); } })),
    h("td", { class: "num" }, live[i] ? won(live[i].price * line.quantity) : "–"),
    h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => { const all = cart.read(); delete all[line.id]; cart.write(all); renderNav(); route(); } }, t("remove")))));
  const couponSelect = select("couponCode", [["", t("noCoupon")], ...coupons.map((c) => [c.couponCode,
    `${named("coupons", c.name)} (${c.discountType === "FIXED" ? won(c.discountValue) : `${c.discountValue}%`}${c.minOrderAmount ? `, ${t("minOrder", { n: won(c.minOrderAmount) })}` : ""})`])],
  chosenCoupon);
  const orderBody = (placing = false) => {
    const body = { userId: session.userId, items: items.map((l) => ({ productId: l.id, quantity: l.quantity })) };
    if (chosenCoupon) body.couponCode = chosenCoupon;
    if (placing && chosenMethod !== "BALANCE") {
      body.paymentMethod = "CARD";
      if (chosenMethod === "MIXED") body.balanceAmount = chosenBalancePart;
    }
    return body;
  };
  // Card choices only where a gateway is configured (else they could only fail after 결제하기).
  if (!options.cardPayments) chosenMethod = "BALANCE";
  const methods = options.cardPayments ? ["BALANCE", "CARD", "MIXED"] : ["BALANCE"];
  const methodSelect = select("paymentMethod", methods.map((m) => [m, t(`method.${m}`)]), chosenMethod);
  const balancePart = h("input", { type: "number", name: "balanceAmount", min: 0, step: 1, value: chosenBalancePart });
  const balancePartField = field(t("balancePart"), balancePart);
  balancePartField.hidden = chosenMethod !== "MIXED";
  // What the order would cost now (the server's own rules): discount, amount, balance.
  const quoteBox = h("section", { class: "card", id: "quote", "aria-live": "polite" });
  async function requote() {
    if (!session) { quoteBox.replaceChildren(h("p", { class: "muted" }, t("loginToQuote"))); return; }
    try {
      const { data: q } = await api("POST", "/api/orders/quote", orderBody());
      // The balance pays all (BALANCE), none (CARD) or the part asked (MIXED); the card the rest.
      const fromBalance = chosenMethod === "BALANCE" ? q.paidAmount
        : chosenMethod === "CARD" ? 0 : Math.min(chosenBalancePart, q.paidAmount);
      const after = q.balance - fromBalance;
      quoteBox.replaceChildren(h("h2", {}, t("quoteTitle")), h("dl", { class: "quote" },
        h("dt", {}, t("subtotal")), h("dd", {}, won(q.totalPrice)),
        h("dt", {}, t("discount")), h("dd", { id: "quote-discount" }, q.discountAmount ? `− ${won(q.discountAmount)}` : won(0)),
        h("dt", {}, t("pay")), h("dd", { class: "price", id: "quote-pay" }, won(q.paidAmount)),
        ...(chosenMethod === "BALANCE" ? [] : [h("dt", {}, t("balancePart")), h("dd", { id: "quote-balance-part" }, won(fromBalance)),
          h("dt", {}, t("cardPart")), h("dd", { id: "quote-card" }, won(q.paidAmount - fromBalance))]),
        h("dt", {}, t("balance")), h("dd", { id: "quote-balance" }, won(q.balance)),
        h("dt", {}, t("afterPay")), h("dd", { class: after < 0 ? "stock-out" : null }, after < 0 ? t("short", { n: won(-after) }) : won(after))));
    } catch (error) {
      quoteBox.replaceChildren(h("p", { class: "stock-out", id: "quote-error" }, describe(error)));
    }
  }
  couponSelect.addEventListener("change", (event) => { chosenCoupon = event.target.value; requote(); });
  methodSelect.addEventListener("change", (event) => {
    chosenMethod = event.target.value;
    balancePartField.hidden = chosenMethod !== "MIXED";
    requote();
  });
  balancePart.addEventListener("change", (event) => { chosenBalancePart = Math.max(0, Math.floor(Number(event.target.value) || 0)); requote(); });
  const form = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    if (needLogin()) return;
    const button = event.target.querySelector("button");
    button.disabled = true;
    try {
      const { data } = await api("POST", "/api/orders", orderBody(true), { key: newKey() });
      chosenCoupon = "";
      // By card the cart stays until the order is paid (a decline or a change of mind
      // loses nothing); paid from the balance, it is done.
      if (data.status === "PAYMENT_PENDING") return toCheckout(data); // the card part, at the gateway
      cart.write({});
      renderNav();
      navigate("#/orders", "ok", `${t("placed")}: #${data.orderId} · ${t("pay")} ${won(data.paidAmount)}`);
    } catch (error) { fail(error); button.disabled = false; }
  } }, session ? field(t("coupon"), couponSelect) : null, session ? field(t("payWith"), methodSelect) : null,
  session ? balancePartField : null, h("button", { type: "submit" }, t("checkout")));
  const cardNote = session && !options.cardPayments ? h("p", { class: "muted", id: "no-card" }, t("noCard")) : null;
  page(t("cart"), table([[t("items")], [t("price"), "num"], [t("quantity"), "num"], [t("total"), "num"], [""]], rows),
    h("p", { class: "price" }, `${t("subtotal")}: ${won(subtotal)}`), quoteBox, form, cardNote);
  await requote();
}

// A decline in the customer's words: the gateway's own message (Korean) without its code in
// the Korean view; our words in the English one (one language at a time).
function declinedText(error) {
  if (error.code !== "PAYMENT_DECLINED") return describe(error);
  return lang === "ko" ? t("declinedPlain", { m: error.message.replace(/^[A-Z0-9_]+: /, "") }) : t("declinedPlain");
}

// Card payment: the gateway's checkout page (dev-pg's, or a real gateway's) takes the card
// and sends the customer back to /shop/?…#/pay/success with paymentKey, orderId and amount
// (or #/pay/fail with code and message); that page asks the shop to confirm.
function toCheckout(order) {
  const back = (route) => `${location.origin}/shop/?order=${order.orderId}#/pay/${route}`;
  toGateway(order.payment, order.items.map((i) => `${named("products", i.name)} × ${i.quantity}`).join(", "), back);
}
function toGateway(p, what, back) {
  const query = new URLSearchParams({ clientKey: p.clientKey || "", orderId: p.pgOrderId, amount: String(p.amount),
    orderName: what, successUrl: back("success"), failUrl: back("fail") });
  location.assign(`${p.checkoutUrl}?${query}`);
}

async function payResultPage(outcome) {
  const query = new URLSearchParams(location.search);
  const orderId = query.get("order");
  history.replaceState(null, "", `${location.pathname}${location.hash}`); // confirm once, not on reload
  const back = h("p", {}, h("a", { href: "#/orders" }, t("toOrders")));
  if (needLogin()) return;
  if (!orderId) return page(t("payResult"), h("p", {}, t("nothingToConfirm")), back);
  if (outcome === "fail") {
    return page(t("payResult"), h("p", { class: "msg error", id: "pay-result", role: "alert" },
      t("payCancelled", { m: `${query.get("message") || ""} (${query.get("code") || ""})` })), back);
  }
  try {
    const { data } = await api("POST", `/api/orders/${orderId}/payment/confirm`,
      { paymentKey: query.get("paymentKey"), amount: Number(query.get("amount")) });
    const done = data.status === "PAID";
    if (done) { cart.write({}); renderNav(); } // paid: the cart has become this order
    page(t("payResult"), h("p", { class: `msg ${done ? "ok" : "warn"}`, id: "pay-result", role: "status" },
      done ? `${t("paidOk")}: #${data.orderId} · ${t("cardPart")} ${won(data.cardAmount)}` : t("payUnknown")), back);
  } catch (error) {
    page(t("payResult"), h("p", { class: "msg error", id: "pay-result", role: "alert" }, declinedText(error)),
      h("p", { class: "muted" }, t("cartKept")), back);
  }
}

async function topUpResultPage(outcome) {
  const query = new URLSearchParams(location.search);
  const chargeId = query.get("charge");
  history.replaceState(null, "", `${location.pathname}${location.hash}`); // confirm once, not on reload
  const back = h("p", {}, h("a", { href: "#/wallet" }, t("wallet")));
  if (needLogin()) return;
  if (!chargeId) return page(t("topUpResult"), h("p", {}, t("nothingToConfirm")), back);
  if (outcome === "fail") {
    return page(t("topUpResult"), h("p", { class: "msg error", id: "topup-result", role: "alert" },
      t("payCancelled", { m: `${query.get("message") || ""} (${query.get("code") || ""})` })), back);
  }
  try {
    const { data } = await api("POST", `/api/balance/charges/${chargeId}/confirm`,
      { paymentKey: query.get("paymentKey"), amount: Number(query.get("amount")) });
    const done = data.newBalance !== undefined;
    page(t("topUpResult"), h("p", { class: `msg ${done ? "ok" : "warn"}`, id: "topup-result", role: "status" },
      done ? t("topUpPaid", { n: won(data.newBalance) }) : t("payUnknown")), back);
  } catch (error) {
    page(t("topUpResult"), h("p", { class: "msg error", id: "topup-result", role: "alert" }, declinedText(error)), back);
  }
}

async function loginPage() {
  page(t("login"), h("form", { class: "stack", onsubmit: async (event) => {
    event.preventDefault();
    const { username, password } = formValues(event.target);
    try {
      const { data } = await api("POST", "/api/auth/login", { username, password });
      setSession({ token: data.accessToken, userId: data.userId, username, role: "CUSTOMER" });
      const { data: me } = await api("GET", "/api/users/me");
      setSession({ ...session, role: me.role, username: me.username });
      navigate(me.role === "ADMIN" ? "#/admin" : "#/", "ok", t("welcome", { u: me.username }));
    } catch (error) { fail(error); }
  } }, field(t("username"), input("username", { autocomplete: "username", required: true })),
  field(t("password"), input("password", { type: "password", autocomplete: "current-password", required: true })),
  h("button", { type: "submit" }, t("login"))));
}

async function signupPage() {
  page(t("signup"), h("form", { class: "stack", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/auth/signup", formValues(event.target));
      navigate("#/login", "ok", t("signedUp"));
    } catch (error) { fail(error); }
  } }, field(t("username"), input("username", { autocomplete: "username", required: true, minlength: 3, maxlength: 32, pattern: "[A-Za-z0-9_.\\-]+" })),
  field(t("password"), input("password", { type: "password", autocomplete: "new-password", required: true, minlength: 8, maxlength: 128 })),
  h("button", { type: "submit" }, t("signup"))));
}

async function walletPage() {
  if (needLogin()) return;
  const q = chooseQuery();
  const current = Number(q.get("page") || 1);
  const [{ data: balance }, { data: history, total }] = await Promise.all([
    api("GET", `/api/balance/${session.userId}`), api("GET", `/api/balance/${session.userId}/history?page=${current}&size=20`)]);
  const amount = (form) => Number(Object.values(formValues(form))[0]);
  const amountField = (name) => field(t("amount"), input(name, { type: "number", min: 1, max: 10000000, step: 1, required: true }));
  // By card where a gateway is configured: paid at its checkout, then credited once.
  const byCard = options.cardPayments ? h("form", { class: "row", id: "topup-card", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const { data } = await api("POST", "/api/balance/charges", { userId: session.userId, amount: amount(event.target) });
      const back = (route) => `${location.origin}/shop/?charge=${data.chargeId}#/topup/${route}`;
      toGateway(data.payment, `${t("wallet")} ${won(data.amount)}`, back);
    } catch (error) { fail(error); }
  } }, amountField("cardAmount"), h("button", { type: "submit" }, t("topUpByCard"))) : null;
  // Without paying, only where the shop allows it (the demo without a gateway).
  const direct = options.directTopUp ? h("form", { class: "row", id: "topup-direct", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const { data } = await api("POST", "/api/balance/recharge",
        { userId: session.userId, amount: amount(event.target) }, { key: newKey() });
      flash("ok", `${t("toppedUp")}: ${won(data.newBalance)}`);
      route();
    } catch (error) { fail(error); }
  } }, amountField("amount"), h("button", { type: "submit" }, options.cardPayments ? t("topUpDirect") : t("topUp"))) : null;
  const form = h("div", {}, byCard, direct,
    options.directTopUp && !options.cardPayments ? h("p", { class: "muted", id: "demo-topup" }, t("demoTopUp")) : null);
  const rows = history.map((e) => h("tr", {}, h("td", {}, when(e.createdAt)), h("td", {}, t(`type.${e.type}`)),
    h("td", { class: "num" }, won(e.amount)), h("td", { class: "num" }, won(e.balanceAfter)),
    h("td", { class: "hide-narrow" }, e.orderId ? `#${e.orderId}` : "")));
  page(t("wallet"), h("p", { class: "price", id: "balance" }, `${t("balance")}: ${won(balance.balance)}`), form,
    h("h2", {}, t("history")), table([[t("date")], [t("type")], [t("amount"), "num"], [t("after"), "num"], [t("order"), "hide-narrow"]], rows),
    pager(current, total, 20, (n) => { location.hash = `#/wallet?page=${n}`; }));
}

async function couponsPage() {
  if (needLogin()) return;
  const info = h("div", { id: "coupon-info" });
  let code = "";
  const terms = (c) => [c.discountType === "FIXED" ? won(c.discountValue) : `${c.discountValue}%`,
    c.maxDiscountAmount ? ` (${t("upTo", { n: won(c.maxDiscountAmount) })})` : "",
    c.minOrderAmount ? ` · ${t("minOrder", { n: won(c.minOrderAmount) })}` : ""];
  const left = (c) => t("remaining", { n: num(c.remainingQuantity), t: num(c.totalQuantity) });
  async function claim(c) {
    try {
      await api("POST", "/api/coupons/claim", { userId: session.userId, couponCode: c.code });
      flash("ok", `${t("claimed")}: ${named("coupons", c.name)}`);
      route();
    } catch (error) { fail(error); }
  }
  async function lookUp() {
    const { data: c } = await api("GET", `/api/coupons/${encodeURIComponent(code)}`);
    const soldOut = c.remainingQuantity <= 0;
    info.replaceChildren(h("div", { class: "card" }, h("h3", {}, named("coupons", c.name)), h("p", {}, ...terms(c)),
      h("p", { class: soldOut ? "stock-out" : "stock-in", id: "remaining" },
        soldOut ? t("soldOut") : left(c)),
      h("button", { type: "button", disabled: soldOut, onclick: () => claim(c).then(() => lookUp().catch(() => {})) }, t("claim"))));
  }
  const form = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    code = formValues(event.target).code.trim().toUpperCase();
    try { await lookUp(); } catch (error) { info.replaceChildren(); fail(error); }
  } }, field(t("code"), input("code", { required: true, maxlength: 40, autocapitalize: "characters" })), h("button", { type: "submit" }, t("lookUp")));
  const [{ data: held }, { data: open }] = await Promise.all([
    api("GET", `/api/users/${session.userId}/coupons?size=100`), api("GET", "/api/coupons?available=true&size=100")]);
  const mine = new Set(held.map((c) => c.couponCode));
  const offers = h("div", { class: "grid", id: "offers" });
  // A coupon the customer holds says so ("held"), not a disabled "available".
  const showOffers = (list) => offers.replaceChildren(...(list.length ? list.map((c) => h("article", { class: "card" },
    h("h3", {}, named("coupons", c.name)), h("p", { class: "muted" }, c.code), h("p", {}, ...terms(c)),
    h("p", { class: "stock-in" }, left(c)),
    mine.has(c.code) ? h("span", { class: "badge", "data-held": c.code }, t("held"))
      : h("button", { type: "button", "aria-label": `${t("claim")} ${c.code}`, onclick: () => claim(c) }, t("claim"))))
    : [h("p", { class: "muted" }, t("noCoupons"))]));
  showOffers(open);
  const rows = held.map((c) => h("tr", {}, h("td", {}, named("coupons", c.name), " ", h("span", { class: "muted" }, c.couponCode)),
    h("td", {}, c.discountType === "FIXED" ? won(c.discountValue) : `${c.discountValue}%`),
    h("td", {}, h("span", { class: "badge" }, t(`status.${c.status}`))), h("td", { class: "hide-narrow" }, when(c.expiresAt))));
  page(t("coupons"), h("h2", {}, t("availableCoupons")), offers, h("h2", {}, t("orLookUp")), form, info,
    h("h2", {}, t("myCoupons")), table([[t("name")], [t("discount")], [t("status")], [t("expires"), "hide-narrow"]], rows));
  refresh = setInterval(async () => { // live remaining counts
    if (code && info.firstChild) lookUp().catch(() => {});
    const { data } = await api("GET", "/api/coupons?available=true&size=100").catch(() => ({ data: null }));
    if (data) showOffers(data);
  }, 3000);
}

// What cancelling says will happen: a paid card order's two parts each go back where they
// came from; an unpaid one gives its holds back at once and charges nothing.
function cancelQuestion(o) {
  if (o.status === "PAYMENT_PENDING") {
    return t("cancelUnpaid", { id: o.orderId, b: o.balanceAmount ? t("balanceBack", { n: won(o.balanceAmount) }) : "" });
  }
  if (o.paymentMethod !== "CARD") return t("confirmCancel", { id: o.orderId });
  const parts = o.balanceAmount ? t("cancelParts", { b: won(o.balanceAmount), c: won(o.cardAmount) })
    : t("cancelCardOnly", { c: won(o.cardAmount) });
  return t("confirmCancelCard", { id: o.orderId, parts });
}
function cancelButton(o) {
  return h("button", { type: "button", class: "secondary", "data-cancel": o.orderId, onclick: async () => {
    if (!window.confirm(cancelQuestion(o))) return;
    try {
      await api("POST", `/api/orders/${o.orderId}/cancel`, undefined, { key: newKey() });
      flash("ok", `${t("cancelled")}: #${o.orderId}`);
      route();
    } catch (error) { fail(error); }
  } }, t("cancel"));
}
function orderRows(orders, { admin = false } = {}) {
  return orders.map((o) => h("tr", {},
    h("td", {}, `#${o.orderId}`), admin ? h("td", {}, o.username) : null, h("td", {}, when(o.createdAt)),
    h("td", {}, o.items.map((i) => h("div", {}, `${named("products", i.name)} × ${i.quantity}`))),
    h("td", { class: "num" }, won(o.paidAmount), o.discountAmount ? h("div", { class: "muted" }, `${t("discount")} ${won(o.discountAmount)}`) : null,
      o.paymentMethod === "CARD" ? h("div", { class: "muted" }, `${t("cardPart")} ${won(o.cardAmount)}`,
        admin && o.payment ? ` · ${t(`payment.${o.payment.status}`)}${o.payment.paymentKey ? ` · ${o.payment.paymentKey}` : ""}` : "") : null),
    h("td", {}, h("span", { class: "badge" }, t(`status.${o.status}`))),
    h("td", {}, !admin && o.status === "PAYMENT_PENDING" && o.payment
      ? [h("button", { type: "button", onclick: () => toCheckout(o) }, t("payNow")), " ", cancelButton(o)]
      : o.status === "PAID" ? cancelButton(o) : "")));
}

async function ordersPage() {
  if (needLogin()) return;
  const q = chooseQuery();
  const current = Number(q.get("page") || 1);
  const { data: orders, total } = await api("GET", `/api/users/${session.userId}/orders?page=${current}&size=20`);
  page(t("orders"), orders.length ? table([[t("order")], [t("date")], [t("items")], [t("pay"), "num"], [t("status")], [""]],
    orderRows(orders)) : h("p", {}, t("noOrders")), pager(current, total, 20, (n) => { location.hash = `#/orders?page=${n}`; }));
}

// Admin console -----------------------------------------------------------------------
function adminNav() {
  const current = location.hash.split("?")[0];
  return h("nav", { class: "row", "aria-label": "admin" }, [["#/admin", t("dashboard")], ["#/admin/products", t("products")],
    ["#/admin/categories", t("adminCategories")], ["#/admin/coupons", t("adminCoupons")], ["#/admin/orders", t("adminOrders")],
    ["#/admin/events", t("events")], ["#/admin/consumers", t("consumers")]].map(([href, label]) => h("a", { href, "aria-current": current === href ? "page" : null }, label)));
}
function needAdmin() {
  if (needLogin()) return true;
  if (session.role !== "ADMIN") { location.hash = "#/"; return true; }
  return false;
}

async function dashboardPage() {
  if (needAdmin()) return;
  // Days in the shop's time zone, summed by the server (every paid order, not a page of them).
  const { data: sales } = await api("GET", "/api/admin/sales?days=7");
  const days = sales.map((s) => s.day);
  const sums = Object.fromEntries(sales.map((s) => [s.day, s.revenue]));
  const paidOrders = sales.reduce((n, s) => n + s.orders, 0);
  const max = Math.max(1, ...Object.values(sums));
  const W = 700, H = 240, bar = W / days.length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 40}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("revenue"));
  days.forEach((d, i) => {
    const height = Math.round((sums[d] / max) * H);
    const rect = document.createElementNS(svg.namespaceURI, "rect");
    Object.entries({ x: i * bar + 10, y: H - height + 10, width: bar - 20, height, fill: "#0b57d0" }).forEach(([k, v]) => rect.setAttribute(k, v));
    const tip = document.createElementNS(svg.namespaceURI, "title");
    tip.textContent = `${d}: ${won(sums[d])}`;
    rect.append(tip);
    const label = document.createElementNS(svg.namespaceURI, "text");
    Object.entries({ x: i * bar + bar / 2, y: H + 28, "text-anchor": "middle" }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = `${d.slice(5)} ${sums[d] ? won(sums[d]) : ""}`;
    svg.append(rect, label);
  });
  const { data: top } = await api("GET", "/api/products/top?days=7&limit=10");
  page(t("dashboard"), adminNav(), h("h2", {}, t("revenue")), h("p", { class: "muted" }, t("paidOrders", { n: paidOrders })), svg,
    h("h2", {}, t("top10")), table([["#"], [t("name")], [t("soldColumn"), "num"], [t("stock"), "num"]],
      top.map((p) => h("tr", {}, h("td", {}, p.rank), h("td", {}, named("products", p.name)), h("td", { class: "num" }, num(p.soldQuantity)), h("td", { class: "num" }, num(p.stock))))));
}

async function adminProductsPage() {
  if (needAdmin()) return;
  const q = chooseQuery();
  const current = Number(q.get("page") || 1);
  const [{ data: products, total }, { data: categories }] = await Promise.all([
    api("GET", `/api/admin/products?page=${current}&size=20`), api("GET", "/api/categories?size=100")]);
  const create = h("form", { class: "row", "aria-label": t("create"), onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      await api("POST", "/api/admin/products", { name: v.name, description: v.description, price: Number(v.price), stock: Number(v.stock), category: v.category });
      flash("ok", `${t("created")}: ${v.name}`);
      route();
    } catch (error) { fail(error); }
  } }, field(t("name"), input("name", { required: true, maxlength: 200 })), field(t("description"), input("description", { maxlength: 2000 })),
  field(t("price"), input("price", { type: "number", min: 1, max: 100000000, required: true })),
  field(t("stock"), input("stock", { type: "number", min: 0, required: true })),
  field(t("category"), select("category", categories.map((c) => [c.slug, c.name]), categories[0]?.slug)),
  h("button", { type: "submit" }, t("create")));
  const rows = products.map((p) => h("tr", {}, h("td", {}, `#${p.id}`), h("td", {}, named("products", p.name), h("div", { class: "muted" }, categoryName(categories, p.category))),
    h("td", {}, h("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      const v = formValues(event.target);
      try {
        await api("PATCH", `/api/admin/products/${p.id}`, { price: Number(v.price), active: v.active === "on" });
        flash("ok", `${t("saved")}: ${p.name}`);
        route();
      } catch (error) { fail(error); }
    } }, h("input", { name: "price", type: "number", min: 1, value: p.price, "aria-label": `${t("price")} ${p.name}` }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "active", checked: p.active }), t("active")),
    h("button", { type: "submit", class: "secondary" }, t("save")))),
    h("td", { class: "num" }, p.stock), h("td", {}, h("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("POST", `/api/admin/products/${p.id}/stock`, { delta: Number(formValues(event.target).delta) });
        flash("ok", `${t("saved")}: ${p.name}`);
        route();
      } catch (error) { fail(error); }
    } }, h("input", { name: "delta", type: "number", required: true, step: 1, "aria-label": `${t("delta")} ${p.name}` }),
    h("button", { type: "submit", class: "secondary" }, t("adjust"))))));
  page(t("products"), adminNav(), h("h2", {}, t("create")), create, h("h2", {}, t("products")),
    table([["#"], [t("name")], [t("price")], [t("stock"), "num"], [t("delta")]], rows),
    pager(current, total, 20, (n) => { location.hash = `#/admin/products?page=${n}`; }));
}

async function adminCategoriesPage() {
  if (needAdmin()) return;
  const { data: categories } = await api("GET", "/api/categories?size=100");
  const form = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/admin/categories", formValues(event.target));
      flash("ok", t("created"));
      route();
    } catch (error) { fail(error); }
  } }, field(t("slug"), input("slug", { required: true, pattern: "[a-z0-9\\-]+", maxlength: 64 })),
  field(t("name"), input("name", { required: true, maxlength: 100 })), h("button", { type: "submit" }, t("create")));
  page(t("adminCategories"), adminNav(), form, table([[t("slug")], [t("name")], [t("products"), "num"]],
    categories.map((c) => h("tr", {}, h("td", {}, c.slug), h("td", {}, c.name), h("td", { class: "num" }, c.productCount)))));
}

async function adminCouponsPage() {
  if (needAdmin()) return;
  const form = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    const body = { code: v.code.toUpperCase(), name: v.name, discountType: v.discountType, discountValue: Number(v.discountValue),
      minOrderAmount: Number(v.minOrderAmount || 0), totalQuantity: Number(v.totalQuantity), validDays: Number(v.validDays) };
    if (v.maxDiscountAmount) body.maxDiscountAmount = Number(v.maxDiscountAmount);
    try {
      await api("POST", "/api/admin/coupons", body);
      flash("ok", `${t("created")}: ${body.code}`);
      route();
    } catch (error) { fail(error); }
  } }, field(t("code"), input("code", { required: true, pattern: "[A-Za-z0-9_\\-]{3,40}" })), field(t("name"), input("name", { required: true })),
  field(t("discountType"), select("discountType", [["FIXED", t("discount.FIXED")], ["PERCENT", t("discount.PERCENT")]], "FIXED")),
  field(t("discountValue"), input("discountValue", { type: "number", min: 1, required: true })),
  field(t("maxDiscount"), input("maxDiscountAmount", { type: "number", min: 1 })),
  field(t("minOrderAmount"), input("minOrderAmount", { type: "number", min: 0, value: 0 })),
  field(t("totalQuantity"), input("totalQuantity", { type: "number", min: 1, required: true })),
  field(t("validDays"), input("validDays", { type: "number", min: 1, value: 7, required: true })),
  h("button", { type: "submit" }, t("create")));
  const body = h("tbody");
  async function load() {
    const { data: coupons } = await api("GET", "/api/admin/coupons?size=100");
    body.replaceChildren(...coupons.map((c) => h("tr", {}, h("td", {}, c.code), h("td", {}, named("coupons", c.name)),
      h("td", {}, c.discountType === "FIXED" ? won(c.discountValue) : `${c.discountValue}%`),
      h("td", { class: "num" }, num(c.issuedQuantity)), h("td", { class: "num" }, num(c.remainingQuantity)), h("td", { class: "num" }, num(c.totalQuantity)))));
  }
  await load();
  page(t("adminCoupons"), adminNav(), h("h2", {}, t("create")), form,
    h("h2", {}, `${t("adminCoupons")} `, h("span", { class: "badge" }, t("live"))),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, [t("code"), t("name"), t("discount"), t("issued"),
      t("left"), t("totalQuantity")].map((x, i) =>
      h("th", { scope: "col", class: i >= 3 ? "num" : null }, x)))), body)));
  refresh = setInterval(() => load().catch(() => {}), 2000); // live issued and remaining counts
}

async function adminOrdersPage() {
  if (needAdmin()) return;
  const q = chooseQuery();
  const current = Number(q.get("page") || 1);
  const params = new URLSearchParams({ page: current, size: 20 });
  if (q.get("status")) params.set("status", q.get("status"));
  if (q.get("userId")) params.set("userId", q.get("userId"));
  const { data: orders, total } = await api("GET", `/api/admin/orders?${params}`);
  const filters = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries(formValues(event.target))) if (v) next.set(k, v);
    location.hash = `#/admin/orders?${next}`;
  } }, field(t("status"), select("status", [["", t("all")], ...["PAID", "PAYMENT_PENDING", "PAYMENT_UNKNOWN", "PAYMENT_FAILED",
    "EXPIRED", "CANCEL_PENDING", "CANCELLED"].map((s) => [s, t(`status.${s}`)])], q.get("status") || "")),
  field(t("user"), input("userId", { type: "number", min: 1, value: q.get("userId") || "" })), h("button", { type: "submit" }, t("filter")));
  page(t("adminOrders"), adminNav(), filters, table([[t("order")], [t("user")], [t("date")], [t("items")], [t("pay"), "num"], [t("status")], [""]],
    orderRows(orders, { admin: true })), pager(current, total, 20, (n) => { params.set("page", n); q.set("page", n); location.hash = `#/admin/orders?${q}`; }));
}

async function adminEventsPage() {
  if (needAdmin()) return;
  const q = chooseQuery();
  const current = Number(q.get("page") || 1);
  const params = new URLSearchParams({ page: current, size: 20 });
  if (q.get("status")) params.set("status", q.get("status"));
  const [{ data: events, total }, { data: delivery }] = await Promise.all([
    api("GET", `/api/admin/events?${params}`), api("GET", "/api/admin/events/status")]);
  const notes = [];
  if (!delivery.dataPlatform) notes.push(h("p", { class: "msg warn", id: "delivery" }, t("noPlatform")));
  else if (!delivery.relay) notes.push(h("p", { class: "msg warn", id: "delivery" }, t("noRelay")));
  const filters = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    const status = formValues(event.target).status;
    location.hash = status ? `#/admin/events?status=${status}` : "#/admin/events";
  } }, field(t("status"), select("status", [["", t("all")], ...["PENDING", "DELIVERED", "FAILED"].map((s) => [s, t(`status.${s}`)])], q.get("status") || "")),
  h("button", { type: "submit" }, t("filter")));
  const rows = events.map((e) => h("tr", {}, h("td", {}, `#${e.id}`), h("td", {}, e.eventType), h("td", {}, e.orderId ? `#${e.orderId}` : ""),
    h("td", {}, h("span", { class: "badge" }, t(`status.${e.status}`))), h("td", { class: "num" }, e.attempts),
    h("td", { class: "hide-narrow" }, when(e.createdAt)),
    h("td", {}, e.status === "FAILED" ? h("button", { type: "button", class: "secondary", onclick: async () => {
      try { await api("POST", `/api/admin/events/${e.id}/retry`); flash("ok", t("retried")); route(); } catch (error) { fail(error); }
    } }, t("retry")) : "")));
  page(t("events"), adminNav(), ...notes, filters, table([["#"], [t("event")], [t("order")], [t("status")], [t("attempts"), "num"], [t("date"), "hide-narrow"], [""]], rows),
    pager(current, total, 20, (n) => { params.set("page", n); location.hash = `#/admin/events?${params}`; }));
}

async function adminConsumersPage() {
  if (needAdmin()) return;
  const { data: consumers } = await api("GET", "/api/admin/consumers");
  const rows = consumers.map((c) => h("tr", { "data-consumer": c.name }, h("td", {}, c.name),
    h("td", { class: "num" }, c.lag), h("td", { class: "num" }, c.pending), h("td", { class: "num" }, c.dead),
    h("td", {}, c.configured ? "✓" : t("notConfigured"))));
  const sections = [];
  for (const c of consumers.filter((c) => c.dead > 0)) {
    const { data: dead } = await api("GET", `/api/admin/consumers/${c.name}/dead?size=100`);
    sections.push(h("h2", {}, t("deadEvents", { c: c.name })), table([[t("event")], [t("order")], [t("attempts"), "num"],
      [t("lastError")], [t("date"), "hide-narrow"], [""]], dead.map((e) => h("tr", { "data-dead": e.eventId },
      h("td", {}, e.eventType), h("td", {}, e.orderId ? `#${e.orderId}` : ""), h("td", { class: "num" }, e.attempts),
      h("td", {}, e.lastError || ""), h("td", { class: "hide-narrow" }, when(e.occurredAt)),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
        try { await api("POST", `/api/admin/consumers/${c.name}/dead/${e.eventId}/retry`); flash("ok", t("retried")); route(); } catch (error) { fail(error); }
      } }, t("retry")))))));
  }
  if (!sections.length) sections.push(h("p", {}, t("noDead")));
  page(t("consumers"), adminNav(), table([[t("name")], [t("lag"), "num"], [t("inProgress"), "num"], [t("dead"), "num"], [t("configured")]], rows),
    ...sections);
}

// Routing -----------------------------------------------------------------------------
const ROUTES = [
  [/^#?\/?$/, shopPage], [/^#\/product\/(\d+)$/, productPage], [/^#\/cart$/, cartPage], [/^#\/login$/, loginPage],
  [/^#\/signup$/, signupPage], [/^#\/wallet$/, walletPage], [/^#\/coupons$/, couponsPage], [/^#\/orders$/, ordersPage],
  [/^#\/pay\/(success|fail)$/, payResultPage], [/^#\/topup\/(success|fail)$/, topUpResultPage],
  [/^#\/admin$/, dashboardPage], [/^#\/admin\/products$/, adminProductsPage], [/^#\/admin\/categories$/, adminCategoriesPage],
  [/^#\/admin\/coupons$/, adminCouponsPage], [/^#\/admin\/orders$/, adminOrdersPage], [/^#\/admin\/events$/, adminEventsPage],
  [/^#\/admin\/consumers$/, adminConsumersPage],
];

// One page renders at a time, in the order they were asked for, so a slow page can never
// paint over the one the user moved on to.
let routing = Promise.resolve();
function route() {
  routing = routing.then(renderRoute, renderRoute);
  return routing;
}

async function renderRoute() {
  if (refresh) { clearInterval(refresh); refresh = null; }
  renderNav();
  const path = location.hash.split("?")[0] || "#/";
  const [pattern, render] = ROUTES.find(([candidate]) => candidate.test(path)) || [/$/, shopPage];
  try {
    await render(...path.match(pattern).slice(1));
  } catch (error) {
    page("—", h("p", {}, error.message));
    fail(error);
  }
  document.body.dataset.ready = path; // for tests: the page has rendered
}

window.addEventListener("hashchange", () => {
  clearFlash();
  if (pending) { flash(...pending); pending = null; }
  route();
});
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "ko" ? "en" : "ko";
  localStorage.setItem("lang", lang);
  route();
});
loadShop().then(route, route);
