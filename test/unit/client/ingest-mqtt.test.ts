import { describe, expect, it } from 'vitest';
import { recordOf, topicLevels, topicProblem } from '../../../client/ingest-mqtt.js';

describe('fluxo ingest mqtt: topics and payloads', () => {
  it('maps + levels to fields and refuses filters it cannot name', () => {
    expect(topicLevels('home/+/+/+/temperature', 'home/h1/kitchen/s7/temperature')).toEqual(['h1', 'kitchen', 's7']);
    expect(topicLevels('home/+/+/+/temperature', 'home/h1/kitchen/temperature')).toBeNull();
    expect(topicLevels('home/+/temperature', 'home/h1/humidity')).toBeNull();
    expect(topicProblem('home/#')).toMatch(/'#' cannot name fields/);
    expect(topicProblem('home/a+/x')).toMatch(/\+ must be a whole level/);
    expect(topicProblem('home/+/x')).toBeNull();
  });

  it('turns numbers and JSON objects into records, topic fields winning, with a timestamp', () => {
    const f = ['house', 'sensor'];
    expect(recordOf(f, ['h1', 's7'], Buffer.from(' 21.5 '), 'temperature', 1000)).toEqual({
      record: { temperature: 21.5, house: 'h1', sensor: 's7', timestamp: 1000 },
    });
    expect(recordOf(f, ['h1', 's7'], Buffer.from('{"temperature":20,"ts":5,"sensor":"x"}'), 'v', 1000)).toEqual({
      record: { temperature: 20, sensor: 's7', house: 'h1', timestamp: 5 },
    });
    expect(recordOf(f, ['h1', 's7'], Buffer.from('hot'), 'v', 1)).toEqual({
      reason: 'payload is neither a number nor a JSON object',
    });
    expect(recordOf(f, ['h1', 's7'], Buffer.from('{"ts":"noon"}'), 'v', 1)).toEqual({
      reason: 'timestamp "noon" is not a number of ms',
    });
    expect(recordOf(f, ['h1', 's7'], Buffer.from('[1]'), 'v', 1)).toEqual({ reason: 'payload is not a JSON object' });
  });
});
