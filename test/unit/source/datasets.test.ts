import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readFile, readSplit, sourceSpec, tempFiles } from './helpers.js';

// Small inline samples shaped like the real files in /work/shared/data (see its README).
// Expected values are written by hand from the sample text.

describe('energydata: quoted, padded cells, scientific notation, CRLF, melt', () => {
  const header = '"date","Appliances","lights","T1","T2","T6","T_out"';
  const l1 =
    '"2016-01-11 17:00:00","  60","30","19.890000000000001","19.199999999999999"," 7.026666666666669947"," 6.5999999999999996e+00"';
  const l2 = '"2016-01-11 17:10:00","  50","30","19.89","19.2","-6.07","-1.0e-01"';
  const source = {
    header: true,
    columns: ['date', 'Appliances:int', 'lights:int', 'T1:double', 'T2:double', 'T6:double', 'T_out:double'],
    eventTime: { field: 'date', format: 'yyyy-MM-dd HH:mm:ss' },
  };

  it('unquotes and trims cells, reads scientific notation, skips the header', async () => {
    const r = await readFile(source, `${header}\r\n${l1}\r\n${l2}\r\n`);
    expect(r.deadLetters).toEqual([]);
    expect(r.rows[0]).toEqual({
      date: '2016-01-11 17:00:00',
      Appliances: 60,
      lights: 30,
      T1: 19.890000000000001,
      T2: 19.199999999999999,
      T6: Number('7.026666666666669947'),
      T_out: 6.6,
      timestamp: Date.UTC(2016, 0, 11, 17, 0, 0),
    });
    expect(r.rows[1]?.T_out).toBe(-0.1);
    expect(r.timestamps).toEqual([Date.UTC(2016, 0, 11, 17, 0), Date.UTC(2016, 0, 11, 17, 10)]);
  });

  it('melts T1, T2, T6 into one reading per room, relabelled', async () => {
    const r = await readFile(
      {
        ...source,
        melt: {
          columns: ['T1', 'T2', 'T6'],
          nameField: 'room',
          valueField: 'temperature',
          names: { T1: 'kitchen', T6: 'outside' },
        },
      },
      `${header}\r\n${l2}\r\n`,
    );
    const base = {
      date: '2016-01-11 17:10:00',
      Appliances: 50,
      lights: 30,
      T_out: -0.1,
      timestamp: Date.UTC(2016, 0, 11, 17, 10),
    };
    expect(r.rows).toEqual([
      { ...base, room: 'kitchen', temperature: 19.89 },
      { ...base, room: 'T2', temperature: 19.2 },
      { ...base, room: 'outside', temperature: -6.07 },
    ]);
  });

  it('rejects the whole line when one melted cell is bad', async () => {
    const bad = '"2016-01-11 17:20:00","50","30","19.89","oops","1","2"';
    const r = await readFile(
      { ...source, melt: { columns: ['T1', 'T2'], nameField: 'room', valueField: 'temperature' } },
      `${header}\n${bad}\n`,
    );
    expect(r.rows).toEqual([]);
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['column T2: expected a number, got "oops"']);
  });

  it('reads a gzip file (detected by its magic bytes)', async () => {
    const dir = tempFiles({ 'energy.csv.gz': gzipSync(`${header}\r\n${l1}\r\n${l2}\r\n`) });
    const r = await readSplit(sourceSpec({ type: 'file', path: 'energy.csv.gz', ...source }, dir));
    expect(r.rows.map((x) => x.Appliances)).toEqual([60, 50]);
  });

  it('reads a gzip file with a misleading name when compression is auto', async () => {
    const dir = tempFiles({ 'energy.csv': gzipSync(`${header}\n${l2}\n`) });
    const r = await readSplit(sourceSpec({ type: 'file', path: 'energy.csv', ...source }, dir));
    expect(r.rows.map((x) => x.Appliances)).toEqual([50]);
  });
});

describe('UCI occupancy: 7-name header, 8 fields per row', () => {
  it('uses the spec columns (8) and skips the header', async () => {
    const text = [
      '"date","Temperature","Humidity","Light","CO2","HumidityRatio","Occupancy"',
      '"1","2015-02-04 17:51:00",23.18,27.272,426,721.25,0.00479298817650529,1',
      '"2","2015-02-04 17:51:59",23.15,27.2675,429.5,714,0.00478344094931065,1',
    ].join('\n');
    const r = await readFile(
      {
        header: true,
        columns: [
          'row',
          'date',
          'temperature:double',
          'humidity:double',
          'light:double',
          'co2:double',
          'humidityRatio:double',
          'occupancy:int',
        ],
        eventTime: { field: 'date', format: 'yyyy-MM-dd HH:mm:ss', timeZone: 'Europe/Brussels' },
      },
      `${text}\n`,
    );
    expect(r.deadLetters).toEqual([]);
    expect(r.rows.map((x) => [x.row, x.temperature, x.light, x.co2, x.occupancy])).toEqual([
      ['1', 23.18, 426, 721.25, 1],
      ['2', 23.15, 429.5, 714, 1],
    ]);
    // 17:51 in Brussels in February (UTC+1) is 16:51 UTC
    expect(r.timestamps).toEqual([Date.UTC(2015, 1, 4, 16, 51, 0), Date.UTC(2015, 1, 4, 16, 51, 59)]);
  });
});

describe('IOT-temp: day-first dd-MM-yyyy HH:mm', () => {
  it('never reads the month first', async () => {
    const text = [
      'id,room_id/id,noted_date,temp,out/in',
      '__export__.temp_log_196134_bd201015,Room Admin,08-12-2018 09:30,29,In',
      '__export__.temp_log_196131_7bca51bc,Room Admin,03-11-2018 23:59,41,Out',
    ].join('\n');
    const r = await readFile(
      {
        header: true,
        columns: ['id', 'room', 'noted_date', 'temp:int', 'inOut'],
        eventTime: { field: 'noted_date', format: 'dd-MM-yyyy HH:mm' },
      },
      `${text}\n`,
    );
    expect(r.timestamps).toEqual([Date.UTC(2018, 11, 8, 9, 30), Date.UTC(2018, 10, 3, 23, 59)]);
    expect(r.rows[0]).toMatchObject({
      id: '__export__.temp_log_196134_bd201015',
      room: 'Room Admin',
      temp: 29,
      inOut: 'In',
    });
  });
});

describe('SML2010: split date and time, hours without a leading zero, CRLF', () => {
  it('joins Date and Time and reads H:mm', async () => {
    const text = [
      '1:Date,2:Time,3:Temperature_Comedor_Sensor',
      '13/03/2012,11:45,18.1875',
      '14/03/2012,0:00,17.5',
      '14/03/2012,2:15,17.25',
    ].join('\r\n');
    const r = await readFile(
      {
        header: true,
        columns: ['date', 'time', 'temperature:double'],
        eventTime: { fields: ['date', 'time'], format: 'dd/MM/yyyy H:mm' },
      },
      `${text}\r\n`,
    );
    expect(r.deadLetters).toEqual([]);
    expect(r.timestamps).toEqual([
      Date.UTC(2012, 2, 13, 11, 45),
      Date.UTC(2012, 2, 14, 0, 0),
      Date.UTC(2012, 2, 14, 2, 15),
    ]);
    expect(r.rows[1]).toEqual({
      date: '14/03/2012',
      time: '0:00',
      temperature: 17.5,
      timestamp: Date.UTC(2012, 2, 14),
    });
  });
});

describe('ULB library: space separated, decimal comma, latin-1 0xA0 thousands separator', () => {
  const columns = [
    'ts:int',
    'node:int',
    'seq:int',
    'internalTemp:double',
    'voltage:double',
    'humidity:double',
    'temperature:double',
    'par:double',
    'tsr:double',
  ];
  const r1 = '1163438041250 20 1 21,21 2,81 51,53 22,08 20 28';
  const r3 = Buffer.concat([
    Buffer.from('1163497985546 20 1'),
    Buffer.from([0xa0]),
    Buffer.from('000 21,21 2,68 52,11 22,14 41 42'),
  ]);

  it('reads decimal commas', async () => {
    const r = await readFile(
      { delimiter: ' ', decimalComma: true, columns, eventTime: { field: 'ts', unit: 'ms' } },
      `${r1}\n`,
    );
    expect(r.rows).toEqual([
      {
        ts: 1163438041250,
        node: 20,
        seq: 1,
        internalTemp: 21.21,
        voltage: 2.81,
        humidity: 51.53,
        temperature: 22.08,
        par: 20,
        tsr: 28,
      },
    ]);
  });

  it('R3 is not valid UTF-8: rejected as utf8, read with encoding latin1 (0xA0 as a thousands separator)', async () => {
    const asUtf8 = await readFile(
      { delimiter: ' ', decimalComma: true, columns, eventTime: { field: 'ts', unit: 'ms' } },
      r3,
    );
    expect(asUtf8.deadLetters.map((d) => d.reason)).toEqual(['invalid UTF-8']);
    const asLatin1 = await readFile(
      { delimiter: ' ', decimalComma: true, encoding: 'latin1', columns, eventTime: { field: 'ts', unit: 'ms' } },
      r3,
    );
    expect(asLatin1.deadLetters).toEqual([]);
    expect(asLatin1.rows[0]).toMatchObject({ seq: 1000, temperature: 22.14, humidity: 52.11 });
  });
});

describe('Room climate: comma + space separator, no header', () => {
  it('splits on ", " and trims', async () => {
    const text =
      '1, 1458031648545, 1, 1, 20.48, 42.332, 185.71, 492.2, 0, 0, 0, 0\n2, 1458031648645, 1, 4, 20.73, 39.983, 214.29, 657.8, 0, 0, 0, 0\n';
    const r = await readFile(
      {
        delimiter: ', ',
        columns: [
          'eid:int',
          'absT:int',
          'relT:int',
          'node',
          'temp:double',
          'relH:double',
          'l1:double',
          'l2:double',
          'occ:int',
          'act:int',
          'door:int',
          'win:int',
        ],
        eventTime: { field: 'absT', unit: 'ms' },
      },
      text,
    );
    expect(r.deadLetters).toEqual([]);
    expect(r.rows.map((x) => [x.node, x.absT, x.temp])).toEqual([
      ['1', 1458031648545, 20.48],
      ['4', 1458031648645, 20.73],
    ]);
  });
});

describe('ThingSpeak: ISO 8601 with +00:00, empty and non-numeric cells', () => {
  it('reads ISO time with an offset into the default output field', async () => {
    const text = [
      'created_at,entry_id,temperature,humidity,light_level,tilt_status,latitude,longitude,elevation,status',
      '2025-07-12T15:58:07+00:00,1,25,60,13.58297,18.99901,,,,',
      '2025-07-12T18:58:07+02:00,2,21,60,(),18.99901,,,,',
    ].join('\n');
    const r = await readFile(
      {
        header: true,
        columns: [
          'created_at',
          'entry_id:int',
          'temperature:double',
          'humidity:double',
          'light:double',
          'tilt:double',
          'lat:double?',
          'lon:double?',
          'elev:double?',
          'status?',
        ],
        eventTime: { field: 'created_at', iso: true },
      },
      `${text}\n`,
    );
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({
      entry_id: 1,
      temperature: 25,
      lat: null,
      status: null,
      timestamp: Date.UTC(2025, 6, 12, 15, 58, 7),
    });
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['column light: expected a number, got "()"']);
  });
});

describe('JSON lines', () => {
  it('picks the listed fields with type checks', async () => {
    const text = [
      '{"sensorId":"s1","timestamp":1717200000000,"temperature":21.5,"other":true}',
      '{"sensorId":"s1","timestamp":"1717200000001","temperature":"21.75"}',
      '{"sensorId":"s1","timestamp":1717200000002}',
      '[1,2,3]',
      '{"sensorId":"s1",',
      '{"sensorId":"s1","timestamp":1717200000003.5,"temperature":1}',
    ].join('\n');
    const r = await readFile(
      {
        format: 'jsonl',
        columns: ['sensorId', 'timestamp:int', 'temperature:double'],
        eventTime: { field: 'timestamp', unit: 'ms' },
      },
      text,
      'in.jsonl',
    );
    expect(r.rows).toEqual([
      { sensorId: 's1', timestamp: 1717200000000, temperature: 21.5 },
      { sensorId: 's1', timestamp: 1717200000001, temperature: 21.75 },
    ]);
    expect(r.deadLetters.map((d) => [d.source, d.reason.split(':')[0]])).toEqual([
      ['in.jsonl:3', 'column temperature'],
      ['in.jsonl:4', 'expected a JSON object'],
      ['in.jsonl:5', 'invalid JSON'],
      ['in.jsonl:6', 'column timestamp'],
    ]);
  });
});

describe('validate rules and event-time units', () => {
  it('sends rows failing a rule to the dead letters with the rule reason', async () => {
    const r = await readFile(
      {
        columns: ['id', 'ts:int', 'temperature:double'],
        eventTime: { field: 'ts', unit: 's' },
        validate: [{ rule: 'temperature > -60.0', reason: 'temperature below -60' }, { rule: 'ts % 1000 == 0' }],
      },
      'a,1717200000,-70\nb,1717200001,20\nc,1717200002.5,20\n',
    );
    // unit s: the event-time column is replaced by its value in ms
    expect(r.rows).toEqual([{ id: 'b', ts: 1717200001000, temperature: 20 }]);
    expect(r.deadLetters.map((d) => d.reason)).toEqual([
      'temperature below -60',
      'column ts: expected an integer, got "1717200002.5"',
    ]);
  });

  it('reads unit us', async () => {
    const r = await readFile(
      { columns: ['id', 'ts:int'], eventTime: { field: 'ts', unit: 'us' } },
      'a,1717200000123456\n',
    );
    expect(r.timestamps).toEqual([1717200000123]);
  });
});
