/** The wire generation: the second token of every subject. Bumped only for breaking changes. */
export const WIRE_VERSION = 'v1';

/** Version of the contracts themselves, reported by services beside their own version. */
export const CONTRACTS_VERSION = '0.1.0';

/** First token of every subject, prefix of every bucket and micro service name. */
export const PROJECT = 'ciliate';
