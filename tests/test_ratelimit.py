from gateway.ratelimit import TokenBucket


def test_burst_then_rate():
    b = TokenBucket(5, now=0.0)
    assert b.take(5, 0.0, rate=10, burst=5)
    assert not b.take(1, 0.0, rate=10, burst=5)
    assert b.take(1, 0.1, rate=10, burst=5)          # 0.1 s at 10/s = one token
    assert not b.take(1, 0.1, rate=10, burst=5)


def test_refused_take_uses_no_tokens_and_burst_caps_savings():
    b = TokenBucket(3, now=0.0)
    assert not b.take(4, 100.0, rate=1, burst=3)    # more than the burst: never, and nothing used
    assert b.take(3, 100.0, rate=1, burst=3)        # 100 s saved up only 3
    assert not b.take(1, 100.5, rate=1, burst=3)
    assert b.take(1, 101.0, rate=1, burst=3)


def test_new_rate_and_burst_apply_to_an_existing_bucket():
    b = TokenBucket(3, now=0.0)
    assert b.take(3, 0.0, rate=1, burst=3)
    assert b.take(10, 1.0, rate=10, burst=20)       # a reload raised the rate: 1 s refills 10
    assert not b.take(2, 1.0, rate=10, burst=20)
    assert b.take(1, 11.0, rate=10, burst=1)        # ... and lowered the burst: savings capped at 1
    assert not b.take(1, 11.0, rate=10, burst=1)


def test_spend_goes_into_debt_and_says_how_long_it_takes_to_pay():
    b = TokenBucket(100, now=0.0)
    assert b.spend(60, 0.0, rate=10, burst=100) == 0.0     # within what there is
    assert b.spend(60, 0.0, rate=10, burst=100) == 2.0     # 20 over: 2 s at 10 a second
    assert b.spend(0, 1.0, rate=10, burst=100) == 1.0      # 1 s later, half paid
    assert b.spend(0, 2.0, rate=10, burst=100) == 0.0
    assert b.available(100.0, rate=10, burst=100) == 100   # savings capped at the burst
