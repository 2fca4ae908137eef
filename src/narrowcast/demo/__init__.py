"""A realistic synthetic shop for trying narrowcast and for benchmarks (``narrowcast demo``)."""

from narrowcast.demo.generator import DemoReport, generate_demo
from narrowcast.demo.personas import PERSONAS, Persona
from narrowcast.demo.summary import describe_store

__all__ = ["PERSONAS", "DemoReport", "Persona", "describe_store", "generate_demo"]
