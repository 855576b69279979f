"""Several hosts on one machine: the fleet on network namespaces, faults while events flow, and a
checker that counts, outside the fleet's code, what was acknowledged and what took effect."""
