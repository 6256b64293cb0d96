-- lookup.lua - wrk script for bench/lookup_bench.c in serve mode: profile lookups by a random
-- loyalty id among the first `PROFILES` (env, default 1000000) generated profiles.
local profiles = tonumber(os.getenv("PROFILES") or "1000000")
math.randomseed(os.time())
request = function()
  local id = 5000000 + math.random(0, profiles - 1)
  return wrk.format("GET", "/data/core/ups/access/entities?schema.name=_xdm.context.profile" ..
                    "&entityId=" .. id .. "&entityIdNS=lumaLoyaltyId")
end
