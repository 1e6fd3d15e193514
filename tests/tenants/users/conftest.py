from tests.gateway.people.conftest import cheap_passwords

__all__ = ["cheap_passwords"]
