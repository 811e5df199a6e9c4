"""Container runtimes behind one interface (base.Runtime): host processes and Docker."""
