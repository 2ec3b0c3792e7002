import { InvalidArgumentError } from 'commander';

/** A commander parser for a whole number in min..max. */
export const wholeNumber = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`expected a whole number ${min}..${max}`);
  return n;
};
