from ecommerce.platform.errors import AppError


class ProductNotFound(AppError):
    status, code, message = 404, "PRODUCT_NOT_FOUND", "No such product"


class CategoryNotFound(AppError):
    status, code, message = 404, "CATEGORY_NOT_FOUND", "No such category"


class CategoryExists(AppError):
    status, code, message = 409, "CATEGORY_EXISTS", "A category with that slug exists"


class OutOfStock(AppError):
    status, code, message = 409, "OUT_OF_STOCK", "Not enough stock"


class StockLimitExceeded(AppError):
    status, code, message = 400, "STOCK_LIMIT_EXCEEDED", "The stock may not pass 1,000,000,000"


class StockOnHold(AppError):
    status, code = 409, "STOCK_ON_HOLD"
    message = "What is left of this product is held by orders waiting for payment"
