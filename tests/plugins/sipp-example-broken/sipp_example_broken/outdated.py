"""A plugin written for a contract version this core does not speak."""


class OutdatedFactory:
    api_version = 0
    descriptor_type = object


driver = OutdatedFactory()
