from ecommerce.platform.errors import AppError


class CouponNotFound(AppError):
    status, code, message = 404, "COUPON_NOT_FOUND", "No such coupon"


class CouponCodeTaken(AppError):
    status, code, message = 409, "COUPON_CODE_TAKEN", "A coupon with that code exists"


class CouponSoldOut(AppError):
    status, code, message = 409, "COUPON_SOLD_OUT", "Every coupon of this kind has been issued"


class CouponAlreadyClaimed(AppError):
    status, code, message = 409, "COUPON_ALREADY_CLAIMED", "You already hold this coupon"


class CouponNotActive(AppError):
    status, code, message = 409, "COUPON_NOT_ACTIVE", "This coupon is not being issued now"


class CouponNotUsable(AppError):
    status, code, message = 400, "COUPON_NOT_USABLE", "This coupon cannot be used on this order"
