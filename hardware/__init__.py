"""Hardware behind small interfaces: cameras, GPIO buttons, indicator LEDs, printers."""
