from ecommerce.platform.errors import AppError


class UsernameTaken(AppError):
    status, code, message = 409, "USERNAME_TAKEN", "That username is taken"


class InvalidCredentials(AppError):
    status, code, message = 401, "INVALID_CREDENTIALS", "Wrong username or password"


class UserNotFound(AppError):
    status, code, message = 404, "USER_NOT_FOUND", "No such user"
