"""Learning from results: send time, channel and A/B choices that improve with every send.

* ``trials`` reads the result log: every message sent is a trial, rewarded by
  a click on it or the campaign's goal within the attribution window;
* ``beta`` holds the Beta-Binomial arithmetic and Thompson sampling;
* ``send_time`` and ``channels`` choose per customer, with a logged probability;
* ``variants`` allocates A/B arms by batched Thompson sampling and declares winners;
* ``control`` draws the global control group;
* ``uplift`` measures what the messages changed.
"""
