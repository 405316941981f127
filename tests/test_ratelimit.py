from gateway.ratelimit import TokenBucket


def test_burst_then_rate():
    b = TokenBucket(rate=10, burst=5, now=0.0)
    assert b.take(5, 0.0)
    assert not b.take(1, 0.0)
    assert b.take(1, 0.1)          # 0.1 s at 10/s = one token
    assert not b.take(1, 0.1)


def test_refused_take_uses_no_tokens_and_burst_caps_savings():
    b = TokenBucket(rate=1, burst=3, now=0.0)
    assert not b.take(4, 100.0)    # more than the burst: never, and nothing used
    assert b.take(3, 100.0)        # 100 s saved up only 3
    assert not b.take(1, 100.5)
    assert b.take(1, 101.0)
