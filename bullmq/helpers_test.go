package bullmq

import "github.com/redis/go-redis/v9"

// The shared test Redis, unique queue names, private redis-server processes
// and polling come from package bullmqtest.

// redisZ is a redis.Z literal helper.
func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
