"""A local Service Bus: an AMQP 1.0 broker the real `azure-servicebus` client talks to.

`ServiceBusBroker(Config.json, clock)` serves the topology in Microsoft's emulator format;
`CONFIG_PATH` is the app's own topology (the events topic and the requests queue).
"""

from pathlib import Path

from sandbox.servicebus.broker import ServiceBusBroker
from sandbox.servicebus.topology import TopologyError, load_topology

CONFIG_PATH = Path(__file__).with_name("Config.json")

__all__ = ["CONFIG_PATH", "ServiceBusBroker", "TopologyError", "load_topology"]
