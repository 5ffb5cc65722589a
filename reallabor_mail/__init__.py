"""reallabor_mail: the newsletter and event-mailing pipeline of the Netzwerkstelle Städtepartnerschaften."""

__version__ = "0.1.0"
