package cache

// tier is one place objects are kept: memory or disk. Implementations are
// safe for concurrent use and do no I/O while holding a lock of the Cache.
type tier interface {
	// get returns the object stored under key, or nil.
	get(key string) *object
	// put stores o under o.Key, replacing what was there.
	put(o *object)
	// remove deletes key, if present.
	remove(key string)
	// each calls fn with the key, tags and time of every object (when its
	// request was sent: contentTime, what a purge's time is compared
	// with) until fn returns false. Objects may come and go meanwhile.
	each(fn func(key string, tags []string, stored int64) bool)
	// name is "memory" or "disk".
	name() string
}
